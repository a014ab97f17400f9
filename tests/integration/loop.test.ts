// SPDX-License-Identifier: GPL-2.0-or-later
// loop.test.ts - the epoll loop: timers, socket dispatch by type and index, stop codes, child exit

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as sys from "../../syscalls/mod.ts";
import { readFileSync } from "node:fs";
import {
  EpollType, Loop, MAX_INDEX, SPIN_CHEAP_FACTOR, SPIN_US, childReap, childWatch, epollTypeName, timerArm, timerCreate, timerDisarm, timerOnce,
  timerPeriodic, timerRead,
} from "../../src/loop/mod.ts";

/** Index of the watchdog timer that ends a stuck test with code -1. */
const WATCHDOG = 0xfffff;
let loop: Loop;
let watchdog: number;
const open: number[] = [];

beforeEach(() => {
  loop = new Loop();
  watchdog = timerOnce(loop, EpollType.NSQUIT_TIMER, WATCHDOG, 5000);
  expect(watchdog).toBeGreaterThanOrEqual(0);
  loop.on(EpollType.NSQUIT_TIMER, () => loop.stop(-1));
});
afterEach(() => {
  for (const fd of open.splice(0)) sys.close(fd);
  sys.close(watchdog);
  loop.close();
});

/** Voluntary context switches of this thread so far: how often it slept. */
function sleepsSoFar(): number {
  const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync("/proc/thread-self/status", "utf8"));
  return Number(m![1]);
}

describe("polling before sleeping", () => {
  /**
   * Runs `count` one-shot timer events, each armed `gapMs` after the last, whose handler asks
   * for polling if `hint`, as one passing on a small message does; returns the sleeps.
   */
  function chain(count: number, gapMs: number, hint = true): number {
    const fd = timerCreate(loop, EpollType.TIMER, 1);
    open.push(fd);
    let fired = 0;
    loop.on(EpollType.TIMER, (_i, _e, tfd) => {
      timerRead(tfd);
      if (hint) loop.pollSoon();
      if (++fired === count) loop.stop(0);
      else timerArm(tfd, gapMs);
    });
    timerArm(fd, gapMs);
    const before = sleepsSoFar();
    expect(loop.run()).toBe(0);
    return sleepsSoFar() - before;
  }

  test("an event 20 us after a batch is taken by polling, without sleeping", () => {
    const slept = chain(50, 0.02);
    expect(loop.spinHits).toBeGreaterThanOrEqual(45);
    // Without polling each of the 50 events costs a sleep (the control below).
    expect(slept).toBeLessThan(10);
  });

  test("without pollSoon() from the batch, the loop sleeps at once: streams of events are not polled for", () => {
    // (An event may be ready before run() waits for it: a few need no sleep either way.)
    expect(chain(50, 0.02, false)).toBeGreaterThanOrEqual(40);
    expect(loop.spinWindows).toBe(0);
  });

  test("with polling off, the same events each cost a sleep", () => {
    loop.spinUs = 0;
    expect(chain(50, 0.02)).toBeGreaterThanOrEqual(45);
    expect(loop.spinWindows).toBe(0);
  });

  test("events 4 windows apart turn polling off: it would burn most of a CPU for nothing", () => {
    chain(200, (4 * SPIN_US) / 1000);
    // Each poll that misses is followed by an event within SPIN_CHEAP_FACTOR windows: off
    // again at once. Polling each time would make 200 windows.
    expect(loop.spinWindows).toBeLessThan(40);
  });

  test("events far apart keep polling on: one window per wakeup is cheap there", () => {
    chain(10, (SPIN_CHEAP_FACTOR * 3 * SPIN_US) / 1000);
    // Every wait after the first handler's pollSoon().
    expect(loop.spinWindows).toBeGreaterThanOrEqual(9);
  });
});

describe("timers", () => {
  test("a periodic timer fires 5 times, then its handler stops the loop with a code", () => {
    let fired = 0;
    let seenIndex = -1;
    const fd = timerPeriodic(loop, EpollType.TIMER, 77, 10);
    open.push(fd);
    loop.on(EpollType.TIMER, (index, events, tfd) => {
      seenIndex = index;
      expect(tfd).toBe(fd);
      expect(events & sys.EPOLLIN).toBe(sys.EPOLLIN);
      const n = timerRead(tfd);
      expect(n).toBeGreaterThanOrEqual(1);
      fired += n;
      if (fired >= 5) loop.stop(7);
    });
    const t0 = performance.now();
    expect(loop.run()).toBe(7);
    expect(fired).toBe(5);
    expect(seenIndex).toBe(77);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
    expect(timerRead(fd)).toBe(-sys.Errno.EAGAIN);
  });

  test("a one-shot timer fires once and can be re-armed", () => {
    const fd = timerCreate(loop, EpollType.TIMER, 1);
    open.push(fd);
    let fired = 0;
    loop.on(EpollType.TIMER, (_i, _e, tfd) => {
      fired += timerRead(tfd);
      if (fired === 1) expect(timerArm(tfd, 5)).toBe(0);
      else loop.stop(fired);
    });
    expect(timerArm(fd, 0)).toBe(0); // 0 ms: fire at once, not disarm
    expect(loop.run()).toBe(2);
  });
});

describe("garbage collection", () => {
  test("when traffic stops (a busy second, then a quiet one) run() makes one full collection", () => {
    const fast = timerPeriodic(loop, EpollType.TIMER, 1, 1);
    const end = timerOnce(loop, EpollType.TIMER, 2, 3600);
    open.push(fast, end);
    let ticks = 0;
    let fullWhileBusy = -1;
    loop.on(EpollType.TIMER, (index, _e, fd) => {
      timerRead(fd);
      if (index === 2) return loop.stop(0);
      // More than GC_BUSY_EVENTS per second for 1.3 s, then nothing.
      if (++ticks * 1 >= 1300) {
        fullWhileBusy = loop.fullCollections;
        timerDisarm(fd);
      }
    });
    expect(loop.run()).toBe(0);
    expect(fullWhileBusy).toBe(0);
    expect(loop.fullCollections).toBe(1);
  }, 10_000);
});

describe("dispatch", () => {
  test("a readable UDP socket is dispatched with its type, index and fd", () => {
    const sa = new Uint8Array(16);
    const rx = sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_NONBLOCK | sys.SOCK_CLOEXEC, 0);
    const tx = sys.socket(sys.AF_INET, sys.SOCK_DGRAM | sys.SOCK_CLOEXEC, 0);
    open.push(rx, tx);
    expect(sys.bind(rx, sa, sys.writeSockaddrIn(sa, new Uint8Array([127, 0, 0, 1]), 0))).toBe(0);
    sys.getsockname(rx, sa);
    expect(loop.add(rx, sys.EPOLLIN, EpollType.UDP, MAX_INDEX)).toBe(0);
    expect(loop.add(rx, sys.EPOLLIN, EpollType.UDP, 1)).toBe(-sys.Errno.EEXIST);
    const seen: number[] = [];
    loop.on(EpollType.UDP, (index, events, fd) => {
      seen.push(index, events, fd);
      const buf = new Uint8Array(16);
      expect(sys.recv(fd, buf, 16, 0)).toBe(3);
      loop.stop(3);
    });
    // Another type on the same loop must not be dispatched to the UDP handler.
    loop.on(EpollType.TCP, () => loop.stop(-2));
    expect(sys.sendto(tx, new Uint8Array([1, 2, 3]), 3, 0, sa, 16)).toBe(3);
    expect(loop.run()).toBe(3);
    expect(seen).toEqual([MAX_INDEX, sys.EPOLLIN, rx]);
  });

  test("mod() changes the reference and del() stops dispatch", () => {
    const fds = new Int32Array(2);
    sys.pipe2(fds, sys.O_NONBLOCK | sys.O_CLOEXEC);
    open.push(fds[0]!, fds[1]!);
    expect(loop.add(fds[0]!, sys.EPOLLIN, EpollType.TCP, 5)).toBe(0);
    expect(loop.mod(fds[0]!, sys.EPOLLIN, EpollType.TCP_SPLICE, 6)).toBe(0);
    const seen: string[] = [];
    loop.on(EpollType.TCP, () => loop.stop(-3));
    loop.on(EpollType.TCP_SPLICE, (index) => {
      seen.push(`${epollTypeName(EpollType.TCP_SPLICE)}:${index}`);
      expect(loop.del(fds[0]!)).toBe(0);
    });
    let turns = 0;
    loop.onTurn((n) => {
      if (++turns === 3) loop.stop(n);
    });
    sys.write(fds[1]!, new Uint8Array(1), 1);
    // Still readable after del(), but no longer dispatched: turns 2 and 3 are timeouts.
    expect(loop.run(20)).toBe(0);
    expect(seen).toEqual(["TCP_SPLICE:6"]);
    expect(loop.del(fds[0]!)).toBe(-sys.Errno.ENOENT);
  });

  test("stop() before run() makes run() return at once", () => {
    loop.stop(9);
    expect(loop.stopping).toBe(true);
    expect(loop.run()).toBe(9);
    expect(loop.stopping).toBe(false);
  });

  test("a ready descriptor whose type has no handler is a bug and throws", () => {
    const fds = new Int32Array(2);
    sys.pipe2(fds, sys.O_NONBLOCK | sys.O_CLOEXEC);
    open.push(fds[0]!, fds[1]!);
    loop.add(fds[0]!, sys.EPOLLIN, EpollType.PING, 1);
    sys.write(fds[1]!, new Uint8Array(1), 1);
    expect(() => loop.run()).toThrow("no handler for PING");
  });

  test.each([
    ["a negative index", EpollType.TCP, -1],
    ["an index above 2^24 - 1", EpollType.TCP, MAX_INDEX + 1],
    ["a type above 255", 256, 0],
  ])("add() rejects %s", (_what, type, index) => {
    expect(() => loop.add(0, sys.EPOLLIN, type, index)).toThrow(RangeError);
  });
});

describe("child exit through a pidfd", () => {
  test.each([
    ["exits with code 3", ["sh", "-c", "exit 3"], null, 3],
    ["is killed by SIGKILL", ["sleep", "30"], sys.SIGKILL, 128 + sys.SIGKILL],
  ] as const)("a Bun.spawn child that %s is reaped with that status", (_what, argv, signal, status) => {
    const child = Bun.spawn([...argv], { stdio: ["ignore", "ignore", "ignore"] });
    const pidfd = childWatch(loop, child.pid, 4242);
    expect(pidfd).toBeGreaterThanOrEqual(0);
    open.push(pidfd);
    if (signal !== null) {
      expect(childReap(pidfd)).toBe(-sys.Errno.EAGAIN); // still running
      expect(sys.pidfd_send_signal(pidfd, signal)).toBe(0);
    }
    let seenIndex = -1;
    loop.on(EpollType.CHILD, (index, _events, fd) => {
      seenIndex = index;
      const st = childReap(fd);
      if (st !== -sys.Errno.EAGAIN) loop.stop(st);
    });
    expect(loop.run()).toBe(status);
    expect(seenIndex).toBe(4242);
    expect(childReap(pidfd)).toBe(-sys.Errno.ECHILD);
  });

  test("childWatch() of a process that does not exist fails with ESRCH", () => {
    expect(childWatch(loop, 0x3fffffff, 1)).toBe(-sys.Errno.ESRCH);
  });
});
