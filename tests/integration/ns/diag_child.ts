// SPDX-License-Identifier: GPL-2.0-or-later
// diag_child.ts - the TCP listener scan of automatic forwarding against the kernel, run by
// tests/integration/fwd_diag.test.ts as an unprivileged user (uid 65534) in a network namespace
// the test made (the "host"); prints one JSON object with what it observed
//
// An agent (nsCreate) makes a namespace inside it, as pasta does. There, from sockets the agent
// creates: listeners on 127.0.0.1, ::1 and [::] (dual-stack), a socket only bound, and two
// sockets only connected (IPv4, IPv6) from ports of their own. On the host: one listener. Then
// the namespace is scanned through a sock_diag socket the agent made there, and through its
// /proc/net/tcp and tcp6 for comparison, and the host through our own sock_diag socket.

import * as sys from "../../../syscalls/libc.ts";
import { nsClose, nsCreate, nsOpen, nsSocket, type NsAgent } from "../../../syscalls/ns.ts";
import {
  AF_INET, AF_INET6, AF_NETLINK, IPPROTO_IPV6, IPV6_V6ONLY, NETLINK_SOCK_DIAG, SOCK_RAW, SOCK_STREAM,
} from "../../../syscalls/constants.ts";
import { writeSockaddrIn, writeSockaddrIn6 } from "../../../syscalls/structs.ts";
import { diagOpen, PROC_TCP_LISTEN, ProcNetFile, TcpListenDiag } from "../../../src/fwd_auto.ts";
import { PortSet } from "../../../src/fwd_ports.ts";
import { nlLoopbackUp } from "../../../src/netlink.ts";

const LOOPBACK4 = Uint8Array.of(127, 0, 0, 1);
const LOOPBACK6 = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
const ANY6 = new Uint8Array(16);

/** Ports from a random base: the namespaces are fresh, so none is taken. */
const base = 20000 + Math.floor(Math.random() * 10000);
const PORT = {
  listen4: base,
  listen6: base + 1,
  listenDual: base + 2,
  boundOnly: base + 3,
  connected4: base + 4,
  connected6: base + 5,
  hostListen: base + 6,
};
const out: Record<string, unknown> = { uid: process.getuid?.(), port: PORT };

function must(r: number, what: string): number {
  if (r < 0) throw new Error(`${what}: errno ${-r}`);
  return r;
}

/** Returns a TCP socket bound to `addr` (4 or 16 bytes) and `port`, made by `make`. */
function bound(make: (domain: number) => number, addr: Uint8Array, port: number, v6only = true): number {
  const v6 = addr.length === 16;
  const fd = must(make(v6 ? AF_INET6 : AF_INET), "socket");
  if (v6) must(sys.setsockoptInt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0), "IPV6_V6ONLY");
  const sa = new Uint8Array(28);
  const len = v6 ? writeSockaddrIn6(sa, addr, port) : writeSockaddrIn(sa, addr, port);
  must(sys.bind(fd, sa, len), `bind port ${port}`);
  return fd;
}

/** Connects `fd` to `addr`:`port` (a listener there completes the handshake at once). */
function connect(fd: number, addr: Uint8Array, port: number): void {
  const sa = new Uint8Array(28);
  const len = addr.length === 16 ? writeSockaddrIn6(sa, addr, port) : writeSockaddrIn(sa, addr, port);
  must(sys.connect(fd, sa, len), `connect port ${port}`);
}

/** Returns the ports in `set`, ascending. */
function ports(set: PortSet): number[] {
  return set.toArray();
}

function scanDiag(fd: number): { count: number; ports: number[] } {
  const map = new PortSet();
  const count = new TcpListenDiag(fd).scan(map);
  return { count, ports: ports(map) };
}

function scanProc(agent: NsAgent): number[] {
  const map = new PortSet();
  for (const path of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const fd = must(nsOpen(agent, path), `open ${path}`);
    new ProcNetFile(fd, path).scan(PROC_TCP_LISTEN, map);
    sys.close(fd);
  }
  return ports(map);
}

const fds: number[] = [];
const agent = nsCreate();
if (!agent.ok) throw new Error(agent.message);
try {
  must(nlLoopbackUp(agent.netlinkFd), "namespace lo up");
  const inNs = (domain: number) => nsSocket(agent, domain, SOCK_STREAM);
  const ownNs = (domain: number) => sys.socket(domain, SOCK_STREAM, 0);

  for (const [addr, port, v6only] of [
    [LOOPBACK4, PORT.listen4, true],
    [LOOPBACK6, PORT.listen6, true],
    [ANY6, PORT.listenDual, false],
  ] as const) {
    const fd = bound(inNs, addr, port, v6only);
    must(sys.listen(fd, 8), `listen port ${port}`);
    fds.push(fd);
  }
  fds.push(bound(inNs, LOOPBACK4, PORT.boundOnly));
  const c4 = bound(inNs, LOOPBACK4, PORT.connected4);
  connect(c4, LOOPBACK4, PORT.listen4);
  const c6 = bound(inNs, LOOPBACK6, PORT.connected6);
  connect(c6, LOOPBACK6, PORT.listen6);
  fds.push(c4, c6);
  const h = bound(ownNs, LOOPBACK4, PORT.hostListen);
  must(sys.listen(h, 8), "listen on the host");
  fds.push(h);

  const nsDiag = must(nsSocket(agent, AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), "namespace sock_diag socket");
  fds.push(nsDiag);
  out.ns = scanDiag(nsDiag);
  out.nsAgain = scanDiag(nsDiag);
  out.nsProc = scanProc(agent);
  const hostDiag = must(diagOpen(), "host sock_diag socket");
  fds.push(hostDiag);
  out.host = scanDiag(hostDiag);
  sys.close(agent.netlinkFd);
} finally {
  for (const fd of fds) sys.close(fd);
  out.agentStatus = nsClose(agent);
}
console.log(JSON.stringify(out));
