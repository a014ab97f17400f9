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
//
// A fork keeps every descriptor open; a re-execution keeps only those it is
// given, and Bun marks every inherited descriptor close-on-exec as it starts,
// so we cannot tell which ones the caller meant us to have. The caller of
// daemonize() names them (`passt -F FD`: a socket its caller connected), and
// the copy gets them at the same numbers; stdin and stderr are passed too,
// until daemonReady() swaps them for /dev/null.

import { openSync, writeSync } from "node:fs";
import { close, dup3 } from "../syscalls/mod.ts";
import { setLogStderr } from "./log.ts";

/** Set in the environment of the background copy; its value is the personality. */
export const DAEMON_ENV = "PASST_TS_DAEMON_CHILD";
const READY = "ready\n";
/** The first descriptor after stdin, stdout and stderr. */
const FIRST_EXTRA_FD = 3;

/** Returns the personality the parent started us as, if we are the background copy. */
export function daemonPersonality(): string | null {
  return process.env[DAEMON_ENV] ?? null;
}

/**
 * Starts the background copy and exits with 0 once it is ready, or with its
 * status if it fails first. Returns only in the copy itself. The copy also gets
 * the descriptors in `keepFds` (at the same numbers; 3 and above), as a fork would.
 */
export async function daemonize(personality: string, keepFds: readonly number[] = []): Promise<void> {
  if (daemonPersonality() !== null) return;
  const compiled = process.argv[1]?.startsWith("/$bunfs") ?? true;
  const argv = compiled
    ? [process.execPath, ...process.argv.slice(2)]
    : [process.execPath, process.argv[1]!, ...process.argv.slice(2)];
  // stdio[n] becomes the copy's descriptor n: pass inherited ones through, leave the gaps closed.
  const extra: ("ignore" | number)[] = [];
  for (const fd of [...keepFds].filter((fd) => fd >= FIRST_EXTRA_FD).sort((a, b) => a - b)) {
    while (FIRST_EXTRA_FD + extra.length < fd) extra.push("ignore");
    extra.push(fd);
  }
  const child = Bun.spawn(argv, {
    argv0: process.argv0,
    env: { ...process.env, [DAEMON_ENV]: personality },
    stdio: ["inherit", "pipe", "inherit", ...extra],
    detached: true,
  });
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
    text += decoder.decode(chunk);
    if (text.includes(READY)) process.exit(0);
  }
  process.exit(await child.exited);
}

/**
 * In the background copy: tells the waiting parent we are ready and leaves the
 * terminal: stdin, stdout and stderr become /dev/null, except a descriptor in
 * `keep` (a `-F` socket given as one of them). Does nothing in the foreground.
 * @syscalls write openat dup3 close
 */
export function daemonReady(keep: readonly number[] = []): void {
  if (daemonPersonality() === null) return;
  writeSync(1, READY);
  const devnull = openSync("/dev/null", "r+");
  for (const fd of [0, 1, 2]) if (!keep.includes(fd)) dup3(devnull, fd, 0);
  close(devnull);
  setLogStderr(false);
}
