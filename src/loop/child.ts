// SPDX-License-Identifier: GPL-2.0-or-later
// child.ts - child process exit in the loop through a pidfd
//
// pidfd_open(pid) gives a descriptor that becomes readable when the process
// exits, whichever thread the kernel sends SIGCHLD to, so it is robust in
// multithreaded Bun where a signalfd for SIGCHLD is not (loop.ts). The
// handler then reaps with waitid(P_PIDFD). The pid must be our child and not
// yet reaped: Bun.spawn's own reaper runs on Bun's event loop, which does not
// run while the loop blocks, so a child spawned before run() is ours to reap
// (and Bun's `exited` promise for it will not resolve).

import {
  arena, close, pidfd_open, viewOf, waitid,
  CLD_DUMPED, CLD_EXITED, CLD_KILLED, EPOLLIN, Errno, P_PIDFD, SIGINFO, WEXITED, WNOHANG,
} from "../../syscalls/mod.ts";
import { EpollType, type Loop } from "./loop.ts";

const INFO = arena(SIGINFO.SIZE, 8);
const INFO_VIEW = viewOf(INFO);

/**
 * Returns a pidfd for child `pid`, registered in `loop` as (CHILD, index),
 * or -errno (-ESRCH if no such process).  @syscalls pidfd_open epoll_ctl close
 */
export function childWatch(loop: Loop, pid: number, index: number): number {
  const fd = pidfd_open(pid, 0);
  if (fd < 0) return fd;
  const r = loop.add(fd, EPOLLIN, EpollType.CHILD, index);
  if (r < 0) {
    close(fd);
    return r;
  }
  return fd;
}

/**
 * Returns the exit status of the child behind `pidfd`, reaping it: its exit
 * code (0-255), or 128 + signal number if a signal killed it; -EAGAIN if it
 * is still running, or -errno (-ECHILD if already reaped or not our child).
 * The pidfd stays open and registered: del() and close() it.  @syscalls waitid
 */
export function childReap(pidfd: number): number {
  INFO.fill(0);
  const r = waitid(P_PIDFD, pidfd, INFO, WEXITED | WNOHANG);
  if (r < 0) return r;
  if (INFO_VIEW.getInt32(SIGINFO.PID, true) === 0) return -Errno.EAGAIN;
  const code = INFO_VIEW.getInt32(SIGINFO.CODE, true);
  const status = INFO_VIEW.getInt32(SIGINFO.STATUS, true);
  if (code === CLD_EXITED) return status & 0xff;
  if (code === CLD_KILLED || code === CLD_DUMPED) return 128 + status;
  return -Errno.EAGAIN; // stopped or continued: not an exit
}
