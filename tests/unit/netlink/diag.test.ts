// SPDX-License-Identifier: GPL-2.0-or-later
// diag.test.ts - sock_diag dump requests and replies, on replies captured from the kernel

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_SEED } from "../../harness/setup.ts";
import { PortSet } from "../../../src/fwd_ports.ts";
import { buildInetDiagDump, DiagStatus, INET_DIAG_DUMP_LEN, InetDiagReply } from "../../../src/netlink/diag.ts";
import { AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN } from "../../../syscalls/constants.ts";
import { Errno } from "../../../syscalls/errno.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/sock_diag");
const LISTEN = 1 << TCP_LISTEN;
const TCP_ESTABLISHED = 1;

const hex = (s: string) => Uint8Array.from((s.replace(/\s+/g, "").match(/../g) ?? []).map((b) => parseInt(b, 16)));

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

/** The datagrams of a fixture, as the kernel sent them (lengths from datagrams.txt). */
function datagrams(name: string): Uint8Array[] {
  const all = fixture(name);
  const line = readFileSync(join(FIXTURES, "datagrams.txt"), "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`datagrams.txt has no ${name}`);
  const out: Uint8Array[] = [];
  let off = 0;
  for (const len of line.slice(name.length + 1).trim().split(" ").map(Number)) {
    out.push(all.slice(off, off + len));
    off += len;
  }
  if (off !== all.length) throw new Error(`${name}: datagrams.txt covers ${off} of ${all.length} bytes`);
  return out;
}

/** Returns the ports in `set`, ascending. */
function ports(set: PortSet): number[] {
  return set.toArray();
}

/** Feeds `chunks` to a fresh reply to request `seq`; returns the status after each, the ports and the count. */
function walk(chunks: Uint8Array[], seq: number, family: number, states = LISTEN) {
  const reply = new InetDiagReply();
  const map = new PortSet();
  reply.begin(seq, family, states);
  const statuses = chunks.map((c) => reply.take(c, c.length, map));
  return { statuses, ports: ports(map), found: reply.found, status: reply.status };
}

/** Byte offsets where the messages of `bytes` start, and its end. */
function boundaries(bytes: Uint8Array): Set<number> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Set<number>([0]);
  for (let off = 0; off + 16 <= bytes.length; ) {
    off += (dv.getUint32(off, true) + 3) & ~3;
    out.add(off);
  }
  return out;
}

// What tests/fixtures/sock_diag/capture.py made listen: see tests/fixtures/README.md.
const TCP4_LISTENERS = [22, 8080, ...Array.from({ length: 40 }, (_, i) => 10000 + i)].sort((a, b) => a - b);
const TCP6_LISTENERS = [443, 5201];

describe("buildInetDiagDump()", () => {
  test("buildInetDiagDump() writes a TCP LISTEN dump request byte for byte", () => {
    const buf = new Uint8Array(128).fill(0xee);
    const len = buildInetDiagDump(buf, 7, { family: AF_INET, protocol: IPPROTO_TCP, states: LISTEN });
    expect(len).toBe(INET_DIAG_DUMP_LEN);
    expect(len).toBe(72);
    expect(buf.subarray(0, len)).toEqual(hex(`
      48000000 1400 0103 07000000 00000000
      02 06 00 00 00040000
      0000 0000 00000000000000000000000000000000 00000000000000000000000000000000 00000000 0000000000000000
    `)); // nlmsghdr: len 72, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq 7, pid 0
    // inet_diag_req_v2: AF_INET, IPPROTO_TCP, no extensions, pad, states 1 << TCP_LISTEN
    // inet_diag_sockid: sport, dport, src, dst, if, cookie: all zero (every socket)
    expect(buf[len]).toBe(0xee);
  });

  test("buildInetDiagDump() writes what capture.py sent, as the kernel echoed it in an NLMSG_ERROR", () => {
    // NLMSG_ERROR carries the refused request after the error: capture.py's, for family 25.
    const echo = fixture("nofamily_error.bin").slice(20, 92);
    const buf = new Uint8Array(INET_DIAG_DUMP_LEN);
    buildInetDiagDump(buf, 4, { family: 25, protocol: IPPROTO_TCP, states: LISTEN });
    expect(buf).toEqual(echo);
    buildInetDiagDump(buf, 2, { family: AF_INET6, protocol: IPPROTO_TCP, states: LISTEN });
    expect(buf[16]).toBe(AF_INET6);
    expect(buf[8]).toBe(2);
  });

  test("buildInetDiagDump() throws RangeError on a buffer shorter than the request", () => {
    expect(() => buildInetDiagDump(new Uint8Array(71), 1, { family: AF_INET, protocol: IPPROTO_TCP, states: LISTEN }))
      .toThrow(RangeError);
  });
});

describe("InetDiagReply", () => {
  test("take() marks the IPv4 listeners of a three-datagram reply, and ends at NLMSG_DONE", () => {
    // Not 9000 (bound, never listening), nor the ports of the established connection to 8080.
    const r = walk(datagrams("tcp4_listen.bin"), 1, AF_INET);
    expect(r.statuses).toEqual([DiagStatus.MORE, DiagStatus.MORE, DiagStatus.DONE]);
    expect(r.ports).toEqual(TCP4_LISTENERS);
    expect(r.found).toBe(42);
  });

  test("take() marks the IPv6 listeners, dual-stack and v6-only, and not the connection to 5201", () => {
    const r = walk(datagrams("tcp6_listen.bin"), 2, AF_INET6);
    expect(r.statuses).toEqual([DiagStatus.MORE, DiagStatus.DONE]);
    expect(r.ports).toEqual(TCP6_LISTENERS);
  });

  test("take() reads a whole reply from one buffer: many messages, then NLMSG_DONE", () => {
    const r = walk([fixture("tcp4_listen.bin")], 1, AF_INET);
    expect(r.status).toBe(DiagStatus.DONE);
    expect(r.ports).toEqual(TCP4_LISTENERS);
  });

  test("take() fails the dump with the kernel's error in NLMSG_DONE (no diag handler for the protocol)", () => {
    const r = walk([fixture("noproto_done.bin")], 3, AF_INET);
    expect(r.status).toBe(-Errno.ENOENT);
    expect(r.ports).toEqual([]);
  });

  test("take() fails the dump with the kernel's error in NLMSG_ERROR (no handler for the family)", () => {
    expect(walk([fixture("nofamily_error.bin")], 4, AF_INET).status).toBe(-Errno.ENOENT);
  });

  test("take() takes an NLMSG_ERROR of 0 (an acknowledgement) for a malformed reply, not for the end", () => {
    const ack = fixture("nofamily_error.bin");
    ack.fill(0, 16, 20);
    expect(walk([ack], 4, AF_INET).status).toBe(-Errno.EPROTO);
  });

  test("take() skips the messages of another request, left from an abandoned dump", () => {
    const r = walk(datagrams("tcp4_listen.bin"), 99, AF_INET);
    expect(r.statuses).toEqual([DiagStatus.MORE, DiagStatus.MORE, DiagStatus.MORE]);
    expect(r.ports).toEqual([]);
  });

  test("take() marks only sockets of the requested family and states", () => {
    expect(walk([fixture("tcp6_listen.bin")], 2, AF_INET).ports).toEqual([]);
    const established = walk([fixture("tcp4_listen.bin")], 1, AF_INET, 1 << TCP_ESTABLISHED);
    expect([established.status, established.found]).toEqual([DiagStatus.DONE, 0]);
  });

  test("take() changes nothing once the dump has ended", () => {
    const reply = new InetDiagReply();
    const map = new PortSet();
    const [done] = datagrams("tcp6_listen.bin").slice(-1);
    reply.begin(2, AF_INET6, LISTEN);
    expect(reply.take(done!, done!.length, map)).toBe(DiagStatus.DONE);
    const more = fixture("tcp6_listen.bin");
    expect(reply.take(more, more.length, map)).toBe(DiagStatus.DONE);
    expect(ports(map)).toEqual([]);
  });

  test("take() rejects a socket message too short for an inet_diag_msg", () => {
    const msg = fixture("tcp6_listen.bin").slice(0, 132);
    new DataView(msg.buffer).setUint32(0, 16 + 71, true);
    expect(walk([msg.subarray(0, 88)], 2, AF_INET6).status).toBe(-Errno.EPROTO);
  });

  test("take() rejects a header length below the header, and a length past the buffer", () => {
    const reply = new InetDiagReply();
    const map = new PortSet();
    const bad = fixture("tcp6_listen.bin");
    new DataView(bad.buffer).setUint32(0, 15, true);
    expect(walk([bad], 2, AF_INET6).status).toBe(-Errno.EPROTO);
    reply.begin(2, AF_INET6, LISTEN);
    expect(reply.take(bad, bad.length + 1, map)).toBe(-Errno.EPROTO);
  });

  test.each(["tcp4_listen.bin", "tcp6_listen.bin", "noproto_done.bin", "nofamily_error.bin"])(
    "take() rejects %s truncated at every length: never a complete dump, only its own ports",
    (name) => {
      const full = fixture(name);
      const seq = new DataView(full.buffer).getUint32(8, true);
      const family = name.startsWith("tcp6") ? AF_INET6 : AF_INET;
      const expected = name.startsWith("tcp4") ? TCP4_LISTENERS : TCP6_LISTENERS;
      const cuts = boundaries(full);
      const reply = new InetDiagReply();
      const map = new PortSet();
      for (let len = 0; len < full.length; len++) {
        reply.begin(seq, family, LISTEN);
        const status = reply.take(full.subarray(0, len), len, map);
        expect(status).not.toBe(DiagStatus.DONE);
        // Only a cut between two messages may look like a reply that goes on.
        if (status === DiagStatus.MORE) expect(cuts.has(len)).toBe(true);
        else expect(status).toBeLessThan(0);
      }
      for (const p of ports(map)) expect(expected).toContain(p);
    },
  );

  test("take() never throws on 2000 seeded byte mutations of the replies", () => {
    let state = TEST_SEED;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state >>> 8;
    };
    const all = [fixture("tcp4_listen.bin"), fixture("tcp6_listen.bin"), fixture("nofamily_error.bin")];
    const reply = new InetDiagReply();
    const map = new PortSet();
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const bytes = all[rand() % all.length]!.slice();
      for (let k = 0; k < 3; k++) bytes[rand() % bytes.length] = rand() & 0xff;
      reply.begin(new DataView(bytes.buffer).getUint32(8, true), AF_INET, LISTEN);
      seen.add(reply.take(bytes, bytes.length, map));
    }
    expect(seen.has(DiagStatus.DONE)).toBe(true);
    expect(seen.has(-Errno.EPROTO)).toBe(true);
  });
});
