// SPDX-License-Identifier: GPL-2.0-or-later
// daemon.ts - running in the background as upstream does, without fork()
//
// Bun cannot fork itself (BUN-FFI.md pitfall 3), so going to the background is
// a re-execution: the first process starts a copy of itself in a new session
// with DAEMON_ENV set, and waits. The copy does all the start-up work; once its
// socket is listening (or its namespace served) it calls daemonReady(), which
// tells the first process on a pipe and detaches from the terminal. The first
// process then exits 0; if the copy dies during start-up instead, its error has
// gone to the same stderr and the first process exits with its status.

import { openSync, writeSync } from "node:fs";
import { dup3 } from "../syscalls/libc.ts";
import { setLogStderr } from "./log.ts";

/** Set in the environment of the background copy; its value is the personality. */
export const DAEMON_ENV = "PASST_TS_DAEMON_CHILD";
const READY = "ready\n";

/** Returns the personality the parent started us as, if we are the background copy. */
export function daemonPersonality(): string | null {
  return process.env[DAEMON_ENV] ?? null;
}

/**
 * Starts the background copy and exits with 0 once it is ready, or with its
 * status if it fails first. Returns only in the copy itself.
 */
export async function daemonize(personality: string): Promise<void> {
  if (daemonPersonality() !== null) return;
  const compiled = process.argv[1]?.startsWith("/$bunfs") ?? true;
  const argv = compiled
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, process.argv[1]!, ...process.argv.slice(2)];
  const child = Bun.spawn(argv, {
    env: { ...process.env, [DAEMON_ENV]: personality },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
    detached: true,
  });
  let text = "";
  for await (const chunk of child.stdout) {
    text += new TextDecoder().decode(chunk);
    if (text.includes(READY)) process.exit(0);
  }
  process.exit(await child.exited);
}

/** In the background copy: tells the waiting parent we are ready and leaves the terminal. */
export function daemonReady(): void {
  if (daemonPersonality() === null) return;
  writeSync(1, READY);
  const devnull = openSync("/dev/null", "r+");
  dup3(devnull, 0, 0);
  dup3(devnull, 1, 0);
  dup3(devnull, 2, 0);
  setLogStderr(false);
}
