// SPDX-License-Identifier: GPL-2.0-or-later
// passt.ts - passt: serve one qemu (or libvirt) guest at a time over a UNIX stream socket
//
// Theory of operation
//
// We listen on `-s PATH`, or on the first free /tmp/passt_N.socket (N = 1..64):
// a path whose socket answers belongs to another passt; a socket that refuses
// is stale and is replaced. Anything else at the path (a regular file, a
// directory) is never removed: -s fails, and the search moves on to the next N.
// One client is served at a time; a second connection while one is served is
// closed at once. When the client goes away (or sends a stream we cannot
// parse), we wait for the next one, unless -1 (or -F, which hands us a
// connected socket) says to exit. Flows of the old client are left to time out;
// the guest MAC address goes back to broadcast until the next client's first
// frame, as a new guest usually has another. The guest path is the same as
// pasta's; only the framing differs (tap/stream.ts).

import { lstatSync, writeFileSync } from "node:fs";
import type { Config } from "./conf.ts";
import type { Ctx } from "./ctx.ts";
import { buildCtx, HostError, readHost } from "./host.ts";
import { die, log } from "./log.ts";
import { EpollType, Loop } from "./loop/loop.ts";
import { stopOnSignals } from "./loop/signal.ts";
import { nlOpen } from "./netlink.ts";
import { PcapWriter } from "./pcap.ts";
import { sandbox } from "./sandbox.ts";
import { setupGuestPath } from "./guest.ts";
import { fwdInit } from "./fwd_auto.ts";
import { StreamTap } from "./tap/stream.ts";
import { daemonReady } from "./daemon.ts";
import {
  accept4, AF_UNIX, bind, close, connect, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP, Errno, errnoName, fcntl,
  F_GETFL, F_SETFL, getsockopt, listen, O_NONBLOCK, socket, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOCKADDR_UN,
  SOL_SOCKET, unlink, writeSockaddrUn,
} from "../syscalls/mod.ts";

/** Default socket paths: /tmp/passt_1.socket .. /tmp/passt_64.socket. */
const SOCKET_PATH_MAX_N = 64;
const sockaddr = new Uint8Array(SOCKADDR_UN.SIZE);

/** getsockopt(SO_PEERCRED): struct ucred { pid, uid, gid }, host order. */
const SO_PEERCRED = 17;
const ucred = new Uint8Array(12);

/** Returns what stands at `path`: nothing, a socket, or something we must not remove. */
function pathKind(path: string): "none" | "socket" | "other" {
  try {
    return lstatSync(path).isSocket() ? "socket" : "other";
  } catch {
    return "none";
  }
}

/**
 * Returns a listening socket bound to `path`, replacing a stale socket there, or
 * -errno: -EADDRINUSE if a live socket (one that accepts) or a file that is not a
 * socket is in the way, -ENAMETOOLONG if the path does not fit a sockaddr_un.
 * @syscalls socket bind connect listen unlink close
 */
function listenAt(path: string): number {
  let len: number;
  try {
    len = writeSockaddrUn(sockaddr, path);
  } catch {
    return -Errno.ENAMETOOLONG;
  }
  const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fd;
  let rc = bind(fd, sockaddr, len);
  if (rc === -Errno.EADDRINUSE && pathKind(path) === "socket") {
    // Someone listening there? Then it is taken; if it refuses, the socket file is
    // stale. Non-blocking: a live server with a full backlog must not hang us.
    const probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const refused = connect(probe, sockaddr, len);
    close(probe);
    if (refused === -Errno.ECONNREFUSED) {
      unlink(path);
      rc = bind(fd, sockaddr, len);
    }
  }
  if (rc === 0) rc = listen(fd, 0);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

/** Returns [fd, path] of our listening socket, or dies naming the path that failed. */
function openSocket(conf: Config): [number, string] {
  if (conf.socketPath !== null) {
    const fd = listenAt(conf.socketPath);
    if (fd === -Errno.EADDRINUSE) die(`Socket path ${conf.socketPath} already in use`);
    if (fd < 0) die(`can't listen on ${conf.socketPath}: ${errnoName(fd)}`);
    return [fd, conf.socketPath];
  }
  for (let n = 1; n <= SOCKET_PATH_MAX_N; n++) {
    const path = `/tmp/passt_${n}.socket`;
    const fd = listenAt(path);
    if (fd >= 0) return [fd, path];
  }
  die(`no free socket path among /tmp/passt_1.socket .. /tmp/passt_${SOCKET_PATH_MAX_N}.socket`);
}

/**
 * Returns "PID n" for the process at the other end of UNIX socket `fd`, or "unknown PID"
 * (the kernel says 0 for a process outside our PID namespace).  @syscalls getsockopt
 */
function peerName(fd: number): string {
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred) < ucred.byteLength) return "unknown PID";
  const pid = new DataView(ucred.buffer).getInt32(0, true);
  return pid > 0 ? `PID ${pid}` : "unknown PID";
}

/** Writes our PID to `path` (mode 0600, as upstream), or dies naming the path. */
function writePidFile(path: string): void {
  try {
    writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
  } catch (e) {
    die(`Couldn't write PID file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Loop indices of passt's descriptors. */
const enum Slot {
  LISTEN = 0,
  CLIENT = 0,
}

/** Runs passt until a signal, or until its only client leaves with -1/-F; returns the exit code. */
export function runPasst(conf: Config): number {
  const nl = nlOpen();
  if (nl < 0) die(`can't open rtnetlink socket: ${errnoName(nl)}`);
  let ctx: Ctx;
  try {
    ctx = buildCtx(conf, readHost(conf, nl));
  } catch (e) {
    if (e instanceof HostError) die(e.message);
    throw e;
  }
  close(nl);

  const loop = new Loop();
  stopOnSignals(loop);
  const pcap = conf.pcap ? new PcapWriter(conf.pcap) : null;
  const tap = new StreamTap(ctx, pcap);
  const guest = setupGuestPath(ctx, loop, tap);
  fwdInit(ctx, loop, null); // `all` rules of -t and -u

  let listenFd = -1;
  let socketPath: string | null = null;
  if (conf.fd === null) {
    [listenFd, socketPath] = openSocket(conf);
    log.info(`UNIX domain socket bound at ${socketPath}`);
    log.info(`You can now start qemu (>= 7.2, with commit 13c6be96618c):`);
    log.info(`    kvm ... -device virtio-net-pci,netdev=s -netdev stream,id=s,server=off,addr.type=unix,addr.path=${socketPath}`);
  }

  const detach = (why: string): void => {
    const exiting = conf.oneOff || conf.fd !== null;
    log.info(`Client connection closed (${why})${exiting ? ", exiting" : ""}`);
    loop.del(tap.fd);
    tap.detach();
    ctx.guestMac.fill(0xff);
    if (exiting) loop.stop(0);
  };
  const attach = (fd: number): void => {
    tap.attach(fd);
    loop.add(fd, EPOLLIN | EPOLLRDHUP, EpollType.TAP_PASST, Slot.CLIENT);
    guest.ready();
  };

  loop.on(EpollType.TAP_PASST, (_i, events) => {
    if (events & EPOLLOUT) {
      const r = tap.flush();
      if (r < 0) return detach(`write: ${errnoName(r)}`);
      if (r === 0) loop.mod(tap.fd, EPOLLIN | EPOLLRDHUP, EpollType.TAP_PASST, Slot.CLIENT);
    }
    // A hang-up or error comes with what is left to read; readBatch() reads it, then the reason.
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      const error = tap.readBatch(guest.input, guest.batchEnd);
      if (error !== null) detach(error);
    }
  });
  loop.onTurn(() => {
    if (!tap.pending) return;
    const r = tap.flush();
    if (r < 0) detach(`write: ${errnoName(r)}`);
    else if (r > 0) loop.mod(tap.fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT, EpollType.TAP_PASST, Slot.CLIENT);
  });

  if (conf.fd !== null) {
    const flags = fcntl(conf.fd, F_GETFL);
    if (flags < 0) die(`-F ${conf.fd}: ${errnoName(flags)}`);
    fcntl(conf.fd, F_SETFL, flags | O_NONBLOCK);
    attach(conf.fd);
  } else {
    loop.add(listenFd, EPOLLIN, EpollType.TAP_LISTEN, Slot.LISTEN);
    loop.on(EpollType.TAP_LISTEN, () => {
      const fd = accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      if (tap.fd >= 0) {
        log.info(`Another client is connected: discarding connection from ${peerName(fd)}`);
        close(fd);
        return;
      }
      log.info(`Accepted connection from ${peerName(fd)}`);
      attach(fd);
    });
  }

  if (conf.pidFile) writePidFile(conf.pidFile);
  daemonReady(conf.fd === null ? [] : [conf.fd]);
  sandbox(conf);
  const code = loop.run();
  if (socketPath) unlink(socketPath);
  pcap?.close();
  return code;
}
