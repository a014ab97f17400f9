// SPDX-License-Identifier: GPL-2.0-or-later
// main.ts - entry point: argv -> Config -> run(); nothing else

import { basename } from "node:path";
import { main, type Mode } from "./conf.ts";
import { die } from "./log.ts";

/** Returns "passt" or "pasta" from the name the executable was started as. */
function personality(): Mode {
  const name = basename(process.argv0);
  if (name.startsWith("passt")) return "passt";
  if (name.startsWith("pasta")) return "pasta";
  // Started from source (`bun src/main.ts`): let tests pick, default to pasta.
  return process.env.PASST_PERSONALITY === "passt" ? "passt" : "pasta";
}

const config = main(personality(), process.argv.slice(2));
die(`${config.mode}: data path not built yet`);
