// SPDX-License-Identifier: GPL-2.0-or-later
// tcp.test.ts - TCP translation end to end in-process: scripted guest, real loopback sockets, real epoll loop

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { close, Errno } from "../../syscalls/mod.ts";
import { Loop } from "../../src/loop/loop.ts";
import { flows } from "../../src/flow/table.ts";
import {
  DELACK_MS, tcpActive, tcpCloseAll, tcpInit, tcpSetKeepaliveInterval, tcpSetPeekOffsetCap, tcpSpillEvents,
} from "../../src/proto/tcp.ts";
import { TcpFlag } from "../../src/wire/tcp.ts";
import { fold, pseudoSum4, pseudoSum6 } from "../../src/wire/checksum.ts";
import { IpProtocol } from "../../src/wire/ipv4.ts";
import {
  acceptOne, connectLoopback, freePort, GuestStack, GUEST4, GUEST6, GUEST6_LL, GW4, GW6, HostSock, listenLoopback,
  makeTcpCtx, parseFrame, runUntil, type TcpGuest,
} from "../harness/tcp_guest.ts";

/** Epoll types for the test's own host sockets (unused by the program). */
const HOST_LISTEN = 250;
const HOST_SOCK = 251;

let loop: Loop;
const hostSocks: HostSock[] = [];
const listenFds = new Map<number, (s: HostSock) => void>();

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/** Deterministic pseudo-random bytes (seed 42), so a failure can be replayed. */
function pattern(n: number, seed = 42): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A loopback server whose accepted connections are handed to `onAccept`. */
function server(v6: boolean, onAccept: (s: HostSock) => void): number {
  const l = listenLoopback(v6);
  listenFds.set(l.fd, onAccept);
  loop.add(l.fd, 1 /* EPOLLIN */, HOST_LISTEN, l.fd);
  return l.port;
}

function setup(argv: string[] = ["-t", "none"], tso = false): GuestStack {
  const ctx = makeTcpCtx(argv);
  const stack = new GuestStack(ctx);
  stack.tap.tso = tso;
  tcpInit(ctx, loop, stack.tap);
  return stack;
}

beforeAll(() => {
  loop = new Loop();
  loop.on(HOST_LISTEN, (fd) => {
    for (;;) {
      const s = acceptOne(fd);
      if (s < 0) return;
      const h = new HostSock(loop, s, HOST_SOCK, hostSocks.length);
      hostSocks.push(h);
      listenFds.get(fd)?.(h);
    }
  });
  loop.on(HOST_SOCK, (index, events) => hostSocks[index]!.handle(events));
});

afterEach(() => {
  tcpCloseAll();
  for (const h of hostSocks) h.close();
  for (const fd of listenFds.keys()) {
    loop.del(fd);
    close(fd);
  }
  listenFds.clear();
});

afterAll(() => {
  loop.close();
});

function guestDst(v6: boolean): Uint8Array {
  return v6 ? GW6 : GW4;
}

describe.each([false, true])("IPv%s", (v6flag) => {
  const v6 = v6flag as boolean;
  const name = v6 ? "IPv6" : "IPv4";

  test(`test_${name}_guest_connect_to_gateway: 1 MiB each way arrives intact`, () => {
    const stack = setup();
    const up = pattern(1 << 20, 1);
    const down = pattern(1 << 20, 2);
    let host: HostSock | null = null;
    const port = server(v6, (h) => {
      host = h;
      h.write(down);
    });
    const g = stack.open(guestDst(v6), port);
    g.connect();
    g.write(up);
    const ok = runUntil(loop, stack, () => host !== null && host.receivedBytes === up.byteLength && g.receivedBytes === down.byteLength, 15000);
    expect(ok).toBe(true);
    expect(host!.hash.digest("hex")).toBe(sha256(up));
    expect(sha256(g.data())).toBe(sha256(down));
    expect(g.duplicateBytes).toBe(0);
    expect(stack.stats.badChecksum).toBe(0);
    expect(g.peerMss).toBeGreaterThan(536);
    expect(g.peerMss).toBeLessThanOrEqual(65520 - (v6 ? 60 : 40));
  });

  test(`test_${name}_offload_partial_checksum: with offload on the tap, data frames that need no cutting leave their checksum to it`, () => {
    const stack = setup(["-t", "none"], true);
    const down = pattern(300_000, 5);
    let host: HostSock | null = null;
    const port = server(v6, (h) => {
      host = h;
      h.write(pattern(1000, 6));
    });
    const g = stack.open(guestDst(v6), port);
    g.connect();
    expect(runUntil(loop, stack, () => g.receivedBytes === 1000, 5000)).toBe(true);
    // The 1000 bytes fit one segment of the guest's MSS: sent with a gsoSize all the same,
    // its checksum field the folded pseudo-header sum (the namespace's TCP then trusts it).
    const src = v6 ? GW6 : GW4, dst = v6 ? GUEST6 : GUEST4;
    const pseudo = (len: number) => fold(v6 ? pseudoSum6(src, dst, IpProtocol.TCP, len) : pseudoSum4(src, dst, IpProtocol.TCP, len));
    expect(stack.tap.partialSums).toEqual([pseudo(20 + 1000)]);
    expect(stack.tap.gsoSizes.filter((n) => n > 0).length).toBe(1);
    // More than one MSS: frames of whole MSS multiples, each still partial; all arrive intact.
    host!.write(down);
    expect(runUntil(loop, stack, () => g.receivedBytes === 1000 + down.byteLength, 5000)).toBe(true);
    expect(sha256(g.data().subarray(1000))).toBe(sha256(down));
    expect(stack.stats.badChecksum).toBe(0);
    expect(stack.tap.gsoSizes.filter((n) => n > 0).length).toBe(stack.tap.partialSums.length);
    expect(stack.tap.partialSums.length).toBeGreaterThan(1);
  });

  test(`test_${name}_half_close: data and FIN from the guest, 64-byte reply delivered exactly once, then FIN`, () => {
    const stack = setup();
    const reply = pattern(64, 3);
    let host: HostSock | null = null;
    const port = server(v6, (h) => {
      host = h;
    });
    const g = stack.open(guestDst(v6), port);
    g.connect();
    g.write(pattern(1000, 4));
    g.close();
    let replied = false;
    const ok = runUntil(loop, stack, () => g.finReceived && tcpActive() === 0, 5000, () => {
      if (host !== null && host.eof && !replied) {
        replied = true;
        host.write(reply, true);
      }
    });
    expect(ok).toBe(true);
    expect(host!.receivedBytes).toBe(1000);
    expect(g.receivedBytes).toBe(64);
    expect(sha256(g.data())).toBe(sha256(reply));
    expect(g.duplicateBytes).toBe(0);
    expect(g.dataAfterFin).toBe(0);
    // Nothing more arrives later: no repeated reply with advancing sequence numbers.
    const before = stack.tap.sent;
    runUntil(loop, stack, () => false, 300);
    expect(stack.tap.sent).toBe(before);
    expect(g.receivedBytes).toBe(64);
  });

  test(`test_${name}_host_closes_first: the guest's FIN after it acknowledged ours ends the connection at once`, () => {
    const stack = setup();
    const port = server(v6, (h) => h.write(pattern(3000, 9), true));
    const g = stack.open(guestDst(v6), port);
    g.connect();
    // The host sends and closes; the guest takes the data and acknowledges our FIN...
    expect(runUntil(loop, stack, () => g.finReceived && g.receivedBytes === 3000, 3000)).toBe(true);
    runUntil(loop, stack, () => false, 100);
    expect(tcpActive()).toBe(1);
    // ...and closes only later: nothing is left to wait for, no FIN timeout, no reset.
    g.close();
    expect(runUntil(loop, stack, () => tcpActive() === 0, 1000)).toBe(true);
    expect(g.rstReceived).toBe(false);
    expect(flows.count).toBe(0);
  });

  test(`test_${name}_guest_rst: closes the host side (ECONNRESET or EOF)`, () => {
    const stack = setup();
    let host: HostSock | null = null;
    const port = server(v6, (h) => {
      host = h;
    });
    const g = stack.open(guestDst(v6), port);
    g.connect();
    g.write(pattern(100, 5));
    expect(runUntil(loop, stack, () => host !== null && host.receivedBytes === 100, 3000)).toBe(true);
    g.reset();
    expect(runUntil(loop, stack, () => host!.eof || host!.error !== 0, 3000)).toBe(true);
    expect(host!.error === -Errno.ECONNRESET || host!.eof).toBe(true);
    expect(tcpActive()).toBe(0);
  });

  test(`test_${name}_host_abort: RST reaches the guest`, () => {
    const stack = setup();
    let host: HostSock | null = null;
    const port = server(v6, (h) => {
      host = h;
    });
    const g = stack.open(guestDst(v6), port);
    g.connect();
    g.write(pattern(10, 6));
    expect(runUntil(loop, stack, () => host !== null && host.receivedBytes === 10, 3000)).toBe(true);
    host!.abort();
    expect(runUntil(loop, stack, () => g.rstReceived, 3000)).toBe(true);
    expect(tcpActive()).toBe(0);
  });

  test(`test_${name}_connect_refused: closed port answers the guest's SYN with RST`, () => {
    const stack = setup();
    const g = stack.open(guestDst(v6), freePort(v6));
    g.connect();
    expect(runUntil(loop, stack, () => g.rstReceived, 3000)).toBe(true);
    expect(g.synAckReceived).toBe(false);
    expect(tcpActive()).toBe(0);
  });

  test(`test_${name}_inbound_-t: host client reaches the guest from the mapped gateway, data both ways`, () => {
    const hostPort = freePort(v6);
    const guestPort = 8080;
    const stack = setup(["-t", `${hostPort}:${guestPort}`]);
    stack.listening.set(guestPort, {});
    const fd = connectLoopback(v6, hostPort);
    const client = new HostSock(loop, fd, HOST_SOCK, hostSocks.length);
    hostSocks.push(client);
    const up = pattern(200_000, 7);
    const down = pattern(300_000, 8);
    client.write(up);
    let g: TcpGuest | undefined;
    let stackWrote = false;
    const ok = runUntil(loop, stack, () => {
      g = stack.guests[0];
      if (g !== undefined && g.established && !stackWrote) {
        stackWrote = true;
        g.write(down);
      }
      return g !== undefined && g.receivedBytes === up.byteLength && client.receivedBytes === down.byteLength;
    }, 10000);
    expect(ok).toBe(true);
    expect(g!.peerAddr).toEqual(v6 ? GW6 : GW4);
    expect(g!.port).toBe(guestPort);
    expect(g!.localAddr).toEqual(v6 ? GUEST6_LL : GUEST4); // link-local source -> the guest's link-local address
    expect(sha256(g!.data())).toBe(sha256(up));
    expect(client.hash.digest("hex")).toBe(sha256(down));
    expect(stack.stats.badChecksum).toBe(0);
  });

  test(`test_${name}_lost_segment_dup_ack: a dropped data frame is resent after duplicate ACKs`, () => {
    const stack = setup();
    const down = pattern(200_000, 9);
    const port = server(v6, (h) => h.write(down));
    let dataFrames = 0;
    stack.tap.dropIf = (frame) => {
      const s = parseFrame(frame, { badChecksum: 0 });
      if (s === null || s.tcp.payload.byteLength === 0) return false;
      return ++dataFrames === 5;
    };
    const g = stack.open(guestDst(v6), port);
    g.connect();
    const t0 = performance.now();
    expect(runUntil(loop, stack, () => g.receivedBytes === down.byteLength, 5000)).toBe(true);
    expect(stack.tap.dropped).toBe(1);
    expect(g.outOfOrder).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(900); // well before the 1 s RTO
    expect(sha256(g.data())).toBe(sha256(down));
  });

  test(`test_${name}_lost_segment_rto: a dropped last frame is resent by the retransmission timer`, () => {
    const stack = setup();
    const down = pattern(3000, 10);
    const port = server(v6, (h) => h.write(down));
    let dropped = false;
    stack.tap.dropIf = (frame) => {
      const s = parseFrame(frame, { badChecksum: 0 });
      if (dropped || s === null || s.tcp.payload.byteLength === 0) return false;
      dropped = (s.tcp.flags & TcpFlag.PSH) !== 0; // the last frame of the burst
      return dropped;
    };
    const g = stack.open(guestDst(v6), port, { mss: 1000 });
    g.connect();
    const t0 = performance.now();
    expect(runUntil(loop, stack, () => g.receivedBytes === down.byteLength, 4000)).toBe(true);
    expect(stack.tap.dropped).toBe(1);
    expect(performance.now() - t0).toBeGreaterThan(900);
    expect(sha256(g.data())).toBe(sha256(down));
  });
});

test("test_segment_bad_checksum: dropped and counted, no connection made", () => {
  const stack = setup();
  const port = freePort(false);
  const g = stack.open(GW4, port);
  g.emitRaw(TcpFlag.SYN, 1000, 0, undefined, true);
  expect(stack.ctx.stats.drops.get("tcp: bad checksum")).toBe(1);
  expect(tcpActive()).toBe(0);
  expect(stack.tap.sent).toBe(0);
});

test("test_segment_no_connection: an ACK for no connection is answered with RST", () => {
  const stack = setup();
  const g = stack.open(GW4, freePort(false));
  g.emitRaw(TcpFlag.ACK, 1000, 12345);
  stack.drain();
  expect(stack.stats.rstUnmatched + (g.rstReceived ? 1 : 0)).toBe(1);
  expect(g.rstReceived).toBe(true);
  expect(flows.count).toBe(0);
});

test("test_zero_window_socket_full: guest data beyond what the socket takes is not acked, then delivered", () => {
  const stack = setup();
  const up = pattern(16 << 20, 11);
  let host: HostSock | null = null;
  const port = server(false, (h) => {
    host = h;
    loop.mod(h.fd, 0, HOST_SOCK, hostSocks.indexOf(h)); // not reading yet
  });
  const g = stack.open(GW4, port, { mss: 65000 });
  g.connect();
  g.write(up);
  // The host does not read: the socket fills, the guest must be held back.
  runUntil(loop, stack, () => false, 500);
  expect(host).not.toBeNull();
  expect(host!.receivedBytes).toBe(0);
  expect(g.allAcked).toBe(false);
  loop.mod(host!.fd, 1 | 0x2000, HOST_SOCK, hostSocks.indexOf(host!));
  expect(runUntil(loop, stack, () => host!.receivedBytes === up.byteLength && g.allAcked, 15000)).toBe(true);
  expect(host!.hash.digest("hex")).toBe(sha256(up));
});

test("test_spill_socket_full: guest data beyond the window goes to the spill, not acked, then written once, in order", () => {
  const stack = setup();
  const up = pattern(12 << 20, 13);
  let host: HostSock | null = null;
  const port = server(false, (h) => {
    host = h;
    loop.mod(h.fd, 0, HOST_SOCK, hostSocks.indexOf(h)); // not reading yet
  });
  const g = stack.open(GW4, port, { mss: 65000, ignoreWindow: true });
  g.connect();
  const spillsBefore = tcpSpillEvents();
  g.write(up);
  runUntil(loop, stack, () => false, 300);
  expect(host).not.toBeNull();
  expect(tcpSpillEvents()).toBeGreaterThan(spillsBefore);
  expect(g.allAcked).toBe(false);
  loop.mod(host!.fd, 1 | 0x2000, HOST_SOCK, hostSocks.indexOf(host!));
  expect(runUntil(loop, stack, () => host!.receivedBytes === up.byteLength && g.allAcked, 15000)).toBe(true);
  expect(host!.hash.digest("hex")).toBe(sha256(up));
});

test("test_spill_fin_pending: a FIN behind spilled data is passed on once the data is written", () => {
  const stack = setup();
  // Small enough for all of it to fit the socket and the spill: the FIN arrives in sequence.
  const up = pattern(4 << 20, 14);
  let host: HostSock | null = null;
  const port = server(false, (h) => {
    host = h;
    loop.mod(h.fd, 0, HOST_SOCK, hostSocks.indexOf(h));
  });
  const g = stack.open(GW4, port, { mss: 65000, ignoreWindow: true });
  g.connect();
  const spillsBefore = tcpSpillEvents();
  g.write(up);
  g.close();
  runUntil(loop, stack, () => false, 300);
  expect(tcpSpillEvents()).toBeGreaterThan(spillsBefore);
  expect(stack.ctx.stats.drops.get("tcpSpillFull") ?? 0).toBe(0);
  expect(g.allAcked).toBe(false);
  expect(host!.eof).toBe(false);
  loop.mod(host!.fd, 1 | 0x2000, HOST_SOCK, hostSocks.indexOf(host!));
  expect(runUntil(loop, stack, () => host!.eof && g.allAcked, 15000)).toBe(true);
  expect(host!.receivedBytes).toBe(up.byteLength);
  expect(host!.hash.digest("hex")).toBe(sha256(up));
});

test("test_zero_window_probe: a guest window that opens without a window update is found by probing", () => {
  const stack = setup();
  const down = pattern(100_000, 15);
  const port = server(false, (h) => h.write(down));
  // Window 0 from the start: the SYN's zero counts as one unit (128 bytes); then nothing.
  const g = stack.open(GW4, port, { window: 0 });
  g.connect();
  runUntil(loop, stack, () => false, 500);
  const stalledAt = g.receivedBytes;
  expect(stalledAt).toBeLessThan(down.byteLength);
  // The guest's window opens, but the update is lost: only our probe can tell.
  g.window = 65535;
  expect(runUntil(loop, stack, () => g.receivedBytes === down.byteLength, 5000)).toBe(true);
  expect(sha256(g.data())).toBe(sha256(down));
  expect(tcpActive()).toBe(1);
});

test("test_no_peek_offset_discard_buffer: without SO_PEEK_OFF, 2 MiB with a loss still arrive once, intact", () => {
  const stack = setup();
  const prev = tcpSetPeekOffsetCap(false);
  try {
    const down = pattern(2 << 20, 12);
    const port = server(false, (h) => h.write(down));
    let dataFrames = 0;
    stack.tap.dropIf = (frame) => {
      const s = parseFrame(frame, { badChecksum: 0 });
      return s !== null && s.tcp.payload.byteLength > 0 && ++dataFrames === 40;
    };
    const g = stack.open(GW4, port);
    g.connect();
    expect(runUntil(loop, stack, () => g.receivedBytes === down.byteLength, 10000)).toBe(true);
    expect(stack.tap.dropped).toBe(1);
    expect(sha256(g.data())).toBe(sha256(down));
  } finally {
    tcpSetPeekOffsetCap(prev);
  }
});

/** Keepalive interval of the keepalive tests, instead of 30 s. */
const KEEPALIVE_TEST_MS = 200;

/**
 * Opens a connection from a guest to a host server, moves `up` and `down`, and returns the
 * guest, the host side and the times of the keepalives the guest gets from then on (an ACK
 * without data whose sequence number is one below the guest's rcvNxt).
 */
function keepaliveSetup(stack: GuestStack, up: number, down: number) {
  let host: HostSock | null = null;
  const port = server(false, (h) => {
    host = h;
    h.write(pattern(down, 20));
  });
  const g = stack.open(GW4, port);
  const keepalives: { at: number; ack: number }[] = [];
  let dataFrames = 0;
  stack.tap.dropIf = (frame) => {
    const s = parseFrame(frame, { badChecksum: 0 });
    if (s === null) return false;
    if (s.tcp.payload.byteLength > 0) dataFrames++;
    else if (s.tcp.flags === TcpFlag.ACK && s.tcp.seqNumber === ((g.rcvNxt - 1) >>> 0)) {
      keepalives.push({ at: performance.now(), ack: s.tcp.ackNumber });
    }
    return false;
  };
  g.connect();
  g.write(pattern(up, 21));
  expect(runUntil(loop, stack, () => host !== null && host.receivedBytes === up && g.receivedBytes === down, 3000)).toBe(true);
  return { g, host: host! as HostSock, keepalives, dataFrames: () => dataFrames };
}

test("test_keepalive_silent_guest: an ACK one below rcvNxt after each interval of silence; the answers keep the connection", () => {
  const prev = tcpSetKeepaliveInterval(KEEPALIVE_TEST_MS);
  try {
    const stack = setup();
    const { g, host, keepalives, dataFrames } = keepaliveSetup(stack, 100, 1000);
    const quietFrom = performance.now();
    const sent = dataFrames();
    expect(runUntil(loop, stack, () => keepalives.length >= 3, 3000)).toBe(true);
    // The first comes one interval after the guest's last segment, each next one an interval
    // after the guest's answer to the one before (the harness answers at once).
    expect(keepalives[0]!.at - quietFrom).toBeGreaterThanOrEqual(KEEPALIVE_TEST_MS - 20);
    for (let k = 1; k < keepalives.length; k++) {
      expect(keepalives[k]!.at - keepalives[k - 1]!.at).toBeGreaterThanOrEqual(KEEPALIVE_TEST_MS - 5);
      expect(keepalives[k]!.at - keepalives[k - 1]!.at).toBeLessThan(KEEPALIVE_TEST_MS * 3);
    }
    for (const k of keepalives) expect(k.ack).toBe(g.sendNext); // all the guest sent is acknowledged
    // The answers are no duplicate ACKs: nothing was sent again, nothing was reset.
    expect(dataFrames()).toBe(sent);
    expect(g.duplicateBytes).toBe(0);
    expect(g.rstReceived).toBe(false);
    expect(host.eof || host.error !== 0).toBe(false);
    expect(tcpActive()).toBe(1);
  } finally {
    tcpSetKeepaliveInterval(prev);
  }
});

test("test_keepalive_guest_forgot: a RST in answer to the keepalive resets the host socket", () => {
  const prev = tcpSetKeepaliveInterval(KEEPALIVE_TEST_MS);
  try {
    const stack = setup();
    const { g, host, keepalives } = keepaliveSetup(stack, 10, 10);
    // The guest reboots: its stack no longer knows the connection, and answers what comes with
    // RST, as Linux does to a segment with ACK set: seq = that segment's ACK number.
    stack.guests.splice(stack.guests.indexOf(g), 1);
    expect(runUntil(loop, stack, () => keepalives.length >= 1, 2000)).toBe(true);
    g.emitRaw(TcpFlag.RST, keepalives[0]!.ack, 0);
    expect(runUntil(loop, stack, () => host.error !== 0 || host.eof, 1000)).toBe(true);
    expect(host.error).toBe(-Errno.ECONNRESET);
    expect(tcpActive()).toBe(0);
  } finally {
    tcpSetKeepaliveInterval(prev);
  }
});

test("test_keepalive_not_in_handshake: a guest that never answers our SYN-ACK gets no keepalive", () => {
  const prev = tcpSetKeepaliveInterval(KEEPALIVE_TEST_MS);
  try {
    const stack = setup();
    const port = server(false, () => {});
    const g = stack.open(GW4, port);
    let others = 0;
    stack.tap.dropIf = (frame) => {
      const s = parseFrame(frame, { badChecksum: 0 });
      if (s !== null && !s.tcp.syn) others++;
      return false;
    };
    stack.guests.splice(stack.guests.indexOf(g), 1); // deaf: no ACK to the SYN-ACK
    g.connect();
    runUntil(loop, stack, () => false, KEEPALIVE_TEST_MS * 3);
    expect(others).toBe(0); // SYN-ACK retransmissions only
    expect(tcpActive()).toBe(1);
  } finally {
    tcpSetKeepaliveInterval(prev);
  }
});

/**
 * Opens a connection from a guest to a host server and returns them with a log of the pure
 * ACKs (no data, no SYN/FIN/RST) and the data frames the guest gets from then on.
 */
function ackLogSetup(stack: GuestStack) {
  let host: HostSock | null = null;
  const port = server(false, (h) => {
    host = h;
  });
  const g = stack.open(GW4, port);
  const pureAcks: { at: number; ack: number }[] = [];
  const data: { at: number; ack: number }[] = [];
  g.connect();
  expect(runUntil(loop, stack, () => host !== null && tcpActive() === 1, 3000)).toBe(true);
  stack.tap.dropIf = (frame) => {
    const s = parseFrame(frame, { badChecksum: 0 });
    if (s === null) return false;
    const entry = { at: performance.now(), ack: s.tcp.ackNumber };
    if (s.tcp.payload.byteLength > 0) data.push(entry);
    else if (s.tcp.flags === TcpFlag.ACK) pureAcks.push(entry);
    return false;
  };
  return { g, host: host! as HostSock, pureAcks, data };
}

test("test_delayed_ack_small_segment: the ACK of a small guest segment nothing answers comes after DELACK_MS, not at the batch end", () => {
  const stack = setup();
  const { g, host, pureAcks } = ackLogSetup(stack);
  const before = pureAcks.length;
  const sentAt = performance.now();
  g.write(pattern(10, 30));
  // The round that delivers the segment ends with its batch: no ACK yet.
  expect(runUntil(loop, stack, () => host.receivedBytes === 10, 1000)).toBe(true);
  expect(pureAcks.slice(before).filter((a) => a.ack === g.sendNext)).toEqual([]);
  // Then the timer's ACK, whole.
  expect(runUntil(loop, stack, () => pureAcks.some((a) => a.ack === g.sendNext), 1000)).toBe(true);
  const ack = pureAcks.find((a) => a.ack === g.sendNext)!;
  expect(ack.at - sentAt).toBeGreaterThanOrEqual(DELACK_MS - 0.5);
  expect(ack.at - sentAt).toBeLessThan(200);
});

test("test_poll_hint: a small request and a short answer each ask the loop to poll; full segments of a bulk transfer do not", () => {
  const stack = setup();
  const { g, host } = ackLogSetup(stack);
  let hints = loop.pollHints;
  g.write(pattern(10, 40));
  expect(runUntil(loop, stack, () => host.receivedBytes === 10, 1000)).toBe(true);
  expect(loop.pollHints).toBeGreaterThan(hints);
  hints = loop.pollHints;
  host.write(pattern(10, 41));
  expect(runUntil(loop, stack, () => g.receivedBytes === 10, 1000)).toBe(true);
  expect(loop.pollHints).toBeGreaterThan(hints);
  hints = loop.pollHints;
  const bulk = pattern(1 << 20, 42);
  g.write(bulk);
  expect(runUntil(loop, stack, () => host.receivedBytes === 10 + bulk.byteLength, 5000)).toBe(true);
  // Hundreds of full segments; at most the last, shorter one asks.
  expect(loop.pollHints - hints).toBeLessThanOrEqual(2);
});

test("test_delayed_ack_carried: a reply within DELACK_MS carries the ACK, and no ACK of its own follows", () => {
  const stack = setup();
  const { g, host, pureAcks, data } = ackLogSetup(stack);
  const before = pureAcks.length;
  g.write(pattern(10, 31));
  let replied = false;
  expect(
    runUntil(loop, stack, () => g.receivedBytes === 10, 1000, () => {
      if (!replied && host.receivedBytes === 10) {
        replied = true;
        host.write(pattern(10, 32));
      }
    }),
  ).toBe(true);
  expect(data.at(-1)!.ack).toBe(g.sendNext);
  // Give the delayed-ACK timer every chance to fire: it must find nothing to send.
  runUntil(loop, stack, () => false, 3 * DELACK_MS + 20);
  expect(pureAcks.slice(before).filter((a) => a.ack === g.sendNext)).toEqual([]);
});

test("test_delayed_ack_full_segment: a full-sized guest segment is acknowledged at the batch end", () => {
  const stack = setup();
  const { g, host, pureAcks } = ackLogSetup(stack);
  const before = pureAcks.length;
  // More than the guest's MSS (1460 here): not a request waiting for its answer.
  g.write(pattern(8000, 33));
  expect(runUntil(loop, stack, () => host.receivedBytes === 8000, 1000)).toBe(true);
  expect(pureAcks.slice(before).some((a) => a.ack === g.sendNext)).toBe(true);
});
