// SPDX-License-Identifier: GPL-2.0-or-later
// main.ts - entry point: argv -> Config -> run(); nothing else

import { basename } from "node:path";
import { main, type Mode } from "./conf.ts";
import { daemonize, daemonPersonality } from "./daemon.ts";
import { runPasst } from "./passt.ts";
import { runPasta } from "./pasta.ts";

/** Returns "passt" or "pasta" from the name the executable was started as. */
function personality(): Mode {
  const inherited = daemonPersonality();
  if (inherited === "passt" || inherited === "pasta") return inherited;
  const name = basename(process.argv0);
  if (name.startsWith("passt")) return "passt";
  if (name.startsWith("pasta")) return "pasta";
  // Started from source (`bun src/main.ts`): let tests pick, default to pasta.
  return process.env.PASST_PERSONALITY === "passt" ? "passt" : "pasta";
}

const name = personality();
const config = await main(name, process.argv.slice(2));
// pasta stays in the foreground when it runs a command; otherwise both go to the background unless -f.
const attached = config.mode === "pasta" && config.netns === null;
// A -F socket must reach the background copy (daemon.ts).
if (!config.foreground && !attached) await daemonize(name, config.fd === null ? [] : [config.fd]);
process.exit(config.mode === "pasta" ? runPasta(config) : runPasst(config));
