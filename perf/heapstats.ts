// SPDX-License-Identifier: GPL-2.0-or-later
// heapstats.ts - builds the heap-statistics debug build of our pasta, for memory investigations
//
//   bun run perf/heapstats.ts         writes perf/results/heapstats/pasta (gitignored)
//   npm run perf:soak -- --no-build --tools ours --ours-bin perf/results/heapstats/pasta
//
// The build is src/main.ts wrapped by perf/heapstats_entry.ts, which logs `heapStats()` at the
// loop's once-a-second collections to /tmp/heap-PID.jsonl (PASTA_HEAPSTATS_DIR to change it). It
// runs without the seccomp filter (seccomp/mod.ts is replaced at build time by a confine() that
// declines): heapStats() opens files, which the filter kills the process for. Diagnostic only.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { RESULTS } from "./common.ts";

const out = join(RESULTS, "heapstats");
mkdirSync(out, { recursive: true });
const r = await Bun.build({
  entrypoints: [join(import.meta.dir, "heapstats_entry.ts")],
  compile: { outfile: join(out, "pasta") },
  minify: true,
  target: "bun",
  plugins: [
    {
      name: "no-seccomp",
      setup(build) {
        build.onLoad({ filter: /seccomp\/mod\.ts$/ }, () => ({
          contents: `export function filterFor() { return null; }\nexport function confine() { return "heap statistics build"; }\n`,
          loader: "ts",
        }));
      },
    },
  ],
});
if (!r.success) {
  for (const m of r.logs) console.error(m);
  process.exit(1);
}
console.log(`wrote ${join(out, "pasta")}`);
