// SPDX-License-Identifier: GPL-2.0-or-later
// loop_signal.test.ts - signals to a loop running in a child Bun process, and why not a signalfd

import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const SIGNUM = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** A child that runs the real loop with stopOnSignals(), optionally with the signals blocked on its main thread. */
function loopChild(blockOnMain: boolean): string {
  return `
import * as sys from "${ROOT}/syscalls/mod.ts";
import { EpollType, Loop, stopOnSignals, timerOnce } from "${ROOT}/src/loop/mod.ts";
const loop = new Loop();
if (stopOnSignals(loop) < 0) throw new Error("stopOnSignals failed");
timerOnce(loop, EpollType.TIMER, 0, 10000);
loop.on(EpollType.TIMER, () => loop.stop(-1));
if (${blockOnMain}) {
  const set = sys.sigsetOf(new Uint8Array(128), [sys.SIGTERM, sys.SIGINT, sys.SIGHUP]);
  if (sys.pthread_sigmask(sys.SIG_BLOCK, set) !== 0) throw new Error("sigmask");
}
process.stdout.write("READY\\n");
const code = loop.run();
process.stdout.write("stopped " + code + "\\n");
`;
}

/** The design rejected: signalfd with the signals blocked on the main thread only. */
const SIGNALFD_CHILD = `
import * as sys from "${ROOT}/syscalls/mod.ts";
const set = sys.sigsetOf(new Uint8Array(128), [sys.SIGTERM, sys.SIGINT, sys.SIGHUP, sys.SIGCHLD]);
sys.pthread_sigmask(sys.SIG_BLOCK, set);
const sfd = sys.signalfd(-1, set, sys.SFD_CLOEXEC);
const info = new Uint8Array(128);
process.stdout.write("READY\\n");
const ep = sys.epoll_create1(0);
const ev = new Uint8Array(16);
sys.writeEpollEvent(sys.viewOf(ev), 0, sys.EPOLLIN, 0, 0);
sys.epoll_ctl(ep, sys.EPOLL_CTL_ADD, sfd, ev);
const n = sys.epoll_wait(ep, new Uint8Array(64), 4, 3000);
if (n > 0) sys.read(sfd, info, 128);
process.stdout.write("signalfd " + n + " " + info[0] + "\\n");
`;

/** Runs `code` in a child Bun, sends `signal` once it is ready; returns its output and how it ended. */
async function signalChild(code: string, signal: keyof typeof SIGNUM) {
  const child = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe", cwd: ROOT });
  const reader = child.stdout.getReader();
  let out = "";
  while (!out.includes("READY\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  child.kill(signal);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await child.exited;
  return { out, exitCode: child.exitCode, signalCode: child.signalCode, stderr: await new Response(child.stderr).text() };
}

describe("signals end a loop running in a subprocess", () => {
  test.each([
    ["SIGTERM", false],
    ["SIGINT", false],
    ["SIGHUP", false],
    ["SIGTERM", true],
    ["SIGINT", true],
  ] as const)("%s stops the loop with 128 + signo (blocked on the main thread: %p)", async (signal, block) => {
    const r = await signalChild(loopChild(block), signal);
    expect(r.stderr).toBe("");
    expect(r.out).toContain(`stopped ${128 + SIGNUM[signal]}\n`);
    expect(r.exitCode).toBe(0);
  });
});

describe("measured: a signalfd is not reliable in multithreaded Bun", () => {
  test("SIGTERM blocked on the main thread only is taken by another thread and kills the process", async () => {
    const r = await signalChild(SIGNALFD_CHILD, "SIGTERM");
    expect(r.out).not.toContain("signalfd");
    expect(r.signalCode).toBe("SIGTERM");
  });
});
