// SPDX-License-Identifier: GPL-2.0-or-later
// timer.ts - timerfd timers registered in the loop with a type and index
//
// A timer is a CLOCK_MONOTONIC timerfd, non-blocking, in the loop's epoll set.
// When it fires, the handler registered for its type runs with its index; the
// handler calls timerRead() to consume the expiration count (level-triggered:
// until read, it stays ready). Arming and reading use arena scratch memory, so
// neither allocates.

import {
  arena, close, read, timerfd_create, timerfd_settime, viewOf, writeItimerspec, getU64,
  CLOCK_MONOTONIC, EPOLLIN, TFD_CLOEXEC, TFD_NONBLOCK, ITIMERSPEC,
} from "../../syscalls/mod.ts";
import type { Loop } from "./loop.ts";

const SPEC = arena(ITIMERSPEC.SIZE, 8);
const SPEC_VIEW = viewOf(SPEC);
const COUNT = arena(8, 8);
const COUNT_VIEW = viewOf(COUNT);

/**
 * Returns a new disarmed timerfd registered in `loop` as (type, index), or
 * -errno.  @syscalls timerfd_create epoll_ctl close
 */
export function timerCreate(loop: Loop, type: number, index: number): number {
  const fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return fd;
  const r = loop.add(fd, EPOLLIN, type, index);
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}

/**
 * Returns 0 after arming timer `fd` to fire first after `firstMs` (0 or less
 * fires at once), then every `intervalMs` (0: once), or -errno. Re-arming
 * replaces the previous setting.  @syscalls timerfd_settime
 */
export function timerArm(fd: number, firstMs: number, intervalMs = 0): number {
  // An all-zero it_value disarms: use one nanosecond for "now".
  writeItimerspec(SPEC_VIEW, firstMs > 0 ? firstMs : 1e-6, intervalMs > 0 ? intervalMs : 0);
  return timerfd_settime(fd, 0, SPEC, null);
}

/** Returns 0 after disarming timer `fd`, or -errno.  @syscalls timerfd_settime */
export function timerDisarm(fd: number): number {
  SPEC.fill(0);
  return timerfd_settime(fd, 0, SPEC, null);
}

/**
 * Returns how many times timer `fd` expired since it was last read (>= 1),
 * or -errno (-EAGAIN if it has not expired).  @syscalls read
 */
export function timerRead(fd: number): number {
  const r = read(fd, COUNT, 8);
  return r < 0 ? r : getU64(COUNT_VIEW, 0);
}

/**
 * Returns a timerfd registered as (type, index) firing every `periodMs`, or
 * -errno.  @syscalls timerfd_create epoll_ctl timerfd_settime close
 */
export function timerPeriodic(loop: Loop, type: number, index: number, periodMs: number): number {
  return createArmed(loop, type, index, periodMs, periodMs);
}

/**
 * Returns a timerfd registered as (type, index) firing once after
 * `delayMs`, or -errno. Re-arm it with timerArm().
 * @syscalls timerfd_create epoll_ctl timerfd_settime close
 */
export function timerOnce(loop: Loop, type: number, index: number, delayMs: number): number {
  return createArmed(loop, type, index, delayMs, 0);
}

function createArmed(loop: Loop, type: number, index: number, firstMs: number, intervalMs: number): number {
  const fd = timerCreate(loop, type, index);
  if (fd < 0) return fd;
  const r = timerArm(fd, firstMs, intervalMs);
  if (r < 0) {
    loop.del(fd);
    close(fd);
    return r;
  }
  return fd;
}
