// SPDX-License-Identifier: GPL-2.0-or-later
// signal.ts - SIGTERM, SIGINT, SIGHUP into the loop through the signal pipe
//
// Not a signalfd: see the Theory of operation in loop.ts for the measurement.
// signalPipe() (syscalls/libc.ts) installs a process-wide C handler that
// writes each signal number as one byte to a pipe; the read end is registered
// here as EpollType.SIGNAL. The default set ends the loop with 128 + signal
// number, the exit status a shell reports for a process killed by it.

import { read, signalPipe, Errno, EPOLLIN, SIGHUP, SIGINT, SIGTERM } from "../../syscalls/mod.ts";
import { EpollType, type Loop } from "./loop.ts";

/** Signals that end the loop by default. */
export const STOP_SIGNALS: readonly number[] = [SIGTERM, SIGINT, SIGHUP];

const BYTE = new Uint8Array(1);

/**
 * Returns the signal pipe's read end after routing `signals` to it and
 * registering it in `loop` as (SIGNAL, 0), or -errno. Set a handler for
 * EpollType.SIGNAL that drains it with signalRead(), or use stopOnSignals().
 * @syscalls memfd_create write close pipe2 rt_sigaction epoll_ctl
 */
export function signalWatch(loop: Loop, signals: readonly number[] = STOP_SIGNALS): number {
  const fd = signalPipe(signals);
  if (fd < 0) return fd;
  const r = loop.add(fd, EPOLLIN, EpollType.SIGNAL, 0);
  return r < 0 && r !== -Errno.EEXIST ? r : fd;
}

/**
 * Returns the number of the next signal taken from the pipe `fd`, 0 if
 * none is pending, or -errno.  @syscalls read
 */
export function signalRead(fd: number): number {
  const r = read(fd, BYTE, 1);
  if (r === -Errno.EAGAIN || r === 0) return 0;
  return r < 0 ? r : BYTE[0]!;
}

/**
 * Returns the pipe fd after making `signals` stop `loop` with 128 + signal
 * number, or -errno. Replaces any EpollType.SIGNAL handler.
 * @syscalls memfd_create write close pipe2 rt_sigaction epoll_ctl read
 */
export function stopOnSignals(loop: Loop, signals: readonly number[] = STOP_SIGNALS): number {
  const fd = signalWatch(loop, signals);
  if (fd < 0) return fd;
  loop.on(EpollType.SIGNAL, (_index, _events, sfd) => {
    const sig = signalRead(sfd);
    if (sig > 0) loop.stop(128 + sig);
  });
  return fd;
}
