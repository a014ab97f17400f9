// SPDX-License-Identifier: GPL-2.0-or-later
// build.ts - compile src/main.ts into one self-contained executable, dist/pasta, and link dist/passt to it
//
// The executable picks its personality from the name it was started as, so one
// file serves both; passt is a symbolic link, as distributions ship it.

import { $ } from "bun";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });

const out = join(dist, "pasta");
const result = await Bun.build({
  entrypoints: [join(root, "src/main.ts")],
  compile: { outfile: out },
  minify: true,
  sourcemap: "none",
  target: "bun",
  // Compiled to JavaScriptCore bytecode at build time: the executable skips parsing its
  // own source at every start (about 30 ms of pasta's start-up here).
  bytecode: true,
  format: "esm",
});
if (!result.success) {
  for (const m of result.logs) console.error(m);
  process.exit(1);
}

const link = join(dist, "passt");
rmSync(link, { force: true });
symlinkSync("pasta", link);

const size = Bun.file(out).size;
console.log(`dist/pasta: ${(size / 2 ** 20).toFixed(1)} MiB; dist/passt -> pasta`);
await $`${out} --version`.quiet();
