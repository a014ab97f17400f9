// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_ack.test.ts - passt's ACKs to the guest follow what the remote peer acknowledged, not what the socket took
//
// The guest is this test: QemuClient on passt's socket, with TCP segments built by hand, so that
// nothing retransmits and every ACK passt sends is seen. It uploads UPLOAD_BYTES to a server in
// the router namespace that accepts and never reads, with a small receive buffer (SO_RCVBUF set
// before listen()); passt's host namespace gets 4 MiB socket send buffers (tcp_wmem), so its
// socket takes the whole upload at once. The peer's kernel takes a few tens of kilobytes, and
// passt's ACKs must stop exactly there: the highest ACK number the guest receives, less its
// initial sequence number + 1, equals the peer's receive queue, and passt's socket holds the
// rest. Once the guest sends its FIN, everything is acknowledged, FIN included.
//
// The host's veth is shaped to 8 Mbit/s (tbf): veth peers have a minimum RTT of a few
// microseconds, under LOW_RTT_US, and are acked for at once as local ones, as upstream does;
// a real remote host is further away. This runs against ours only: Debian's 2023 passt
// advertises the peer's own window (tcpi_snd_wnd, here some 14 KB), so its socket never takes
// more than the peer does, and there is nothing to tell apart.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ADDR, Topology, explain, suiteSkipReason, type SpawnHandle } from "../../harness/netns.ts";
import { TcpFlag, TcpOptions, type TcpFields, type TcpView } from "../../../src/wire/tcp.ts";
import { dhcpDiscover, dhcpOffer, ipv4Bytes, passtBinaries, QemuClient, tcpFrame, tcpSegment } from "./_client.ts";

const SERVER_PORT = 9310;
const GUEST_PORT = 45679;
const UPLOAD_BYTES = 1 << 20;
const SEGMENT_BYTES = 16 << 10;
/** passt's sockets start with, and keep, a send buffer of this size. */
const SNDBUF_BYTES = 4 << 20;

/** Server in the router namespace: a small receive buffer, accepts, never reads. */
const SERVER_PY = `
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
s.bind(("${ADDR.remote4}", ${SERVER_PORT}))
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
time.sleep(600)
`;

const segment = (frame: Uint8Array): TcpView | null => tcpSegment(frame, SERVER_PORT, GUEST_PORT);

describe.each(passtBinaries().map((b) => [b.name, b] as const))("passt ACKs to the guest (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["python3", "tc", "ss"]) ?? (bin.upstream2023 ? "Debian's 2023 passt advertises the peer's window: its socket never holds more than the peer took" : null);
  let topo: Topology;
  let passt: SpawnHandle;
  let server: SpawnHandle;
  let sock: string;

  /** Returns the Recv-Q and Send-Q of the established connection to or from SERVER_PORT in `ns`, or null. */
  async function queues(ns: "host" | "router"): Promise<{ recv: number; send: number } | null> {
    const r = await topo.run(["ss", "-Htn", "state", "established", `( sport = :${SERVER_PORT} or dport = :${SERVER_PORT} )`], { ns, user: "root" });
    const m = /^\s*(\d+)\s+(\d+)/m.exec(r.stdout);
    return m ? { recv: Number(m[1]), send: Number(m[2]) } : null;
  }

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    for (const argv of [
      ["sysctl", "-qw", `net.ipv4.tcp_wmem=4096 ${SNDBUF_BYTES} ${SNDBUF_BYTES}`],
      ["tc", "qdisc", "add", "dev", ADDR.hostIf, "root", "tbf", "rate", "8mbit", "burst", "8kb", "latency", "200ms"],
    ]) {
      const r = await topo.run(argv, { user: "root" });
      if (r.code !== 0) throw new Error(explain(argv.join(" "), r));
    }
    server = topo.spawn(["python3", "-c", SERVER_PY], { ns: "router", user: "root" });
    for (let i = 0; i < 200 && !server.output().stdout.includes("listening"); i++) await Bun.sleep(25);
    if (!server.output().stdout.includes("listening")) throw new Error(`server did not start: ${server.output().stderr}`);
    sock = join(topo.dir, "passt.socket");
    passt = topo.spawn([bin.path, "-f", "-s", sock, "-l", join(topo.dir, "passt.log")]);
    for (let i = 0; i < 200 && !existsSync(sock); i++) await Bun.sleep(25);
    if (!existsSync(sock)) throw new Error(`passt did not create its socket: ${passt.output().stderr}`);
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("the ACK stops where the peer's kernel stopped taking data; the FIN acks everything", async () => {
    const c = await QemuClient.connect(sock);
    try {
      const xid = 0x61636b73;
      c.sendFrame(dhcpDiscover(xid, 0x43));
      const offer = await c.waitFrame((f) => dhcpOffer(f, xid) !== null);
      expect(offer).not.toBeNull();
      const macs = { src: Uint8Array.of(0x02, 0, 0, 0, 0, 0x43), dst: offer!.slice(6, 12) };
      const guest = ipv4Bytes(dhcpOffer(offer!, xid)!);
      const remote = ipv4Bytes(ADDR.remote4);
      const send = (flags: number, seq: number, ack: number, extra: Partial<TcpFields> = {}, payload?: Uint8Array) =>
        c.sendFrame(tcpFrame(macs, guest, remote, {
          srcPort: GUEST_PORT, dstPort: SERVER_PORT, seqNumber: seq >>> 0, ackNumber: ack >>> 0, flags, window: 65535, ...extra,
        }, payload));

      const iss = 0x7fff0000;
      send(TcpFlag.SYN, iss, 0, { mss: 65000, windowScale: 7 });
      const synAck = await c.waitFrame((f) => segment(f)?.syn === true);
      expect(synAck, "no SYN-ACK").not.toBeNull();
      const sa = segment(synAck!)!;
      const opts = new TcpOptions();
      sa.readOptions(opts);
      const ws = opts.windowScale ?? 0;
      const rcvNxt = (sa.seqNumber + 1) >>> 0;
      send(TcpFlag.ACK, iss + 1, rcvNxt);

      // Every segment from passt: the highest ACK, and the window at it.
      let maxAck = 0; // bytes acknowledged after our SYN
      let window = sa.window;
      const seen = (f: Uint8Array): void => {
        const t = segment(f)!;
        const acked = (t.ackNumber - (iss + 1)) | 0;
        if (t.ack && acked >= maxAck) {
          maxAck = acked;
          window = t.window << ws;
        }
      };
      const take = (): void => c.drainFrames((f) => segment(f) !== null).forEach(seen);

      // Upload within passt's window; no retransmissions, ever.
      let sent = 0;
      const uploadBy = Date.now() + 10_000;
      while (sent < UPLOAD_BYTES && Date.now() < uploadBy) {
        take();
        const room = Math.min(maxAck + window - sent, UPLOAD_BYTES - sent);
        if (room < SEGMENT_BYTES && sent + room < UPLOAD_BYTES) {
          const f = await c.waitFrame((x) => segment(x) !== null, 100);
          if (f !== null) seen(f);
          continue;
        }
        const len = Math.min(SEGMENT_BYTES, room);
        send(TcpFlag.ACK | TcpFlag.PSH, iss + 1 + sent, rcvNxt, {}, new Uint8Array(len).fill(0x61));
        sent += len;
      }
      expect(sent, "passt's window did not take the upload").toBe(UPLOAD_BYTES);

      // Let the peer's window close and passt's ACKs settle: they must match what the peer has.
      let peer: { recv: number; send: number } | null = null;
      const settleBy = Date.now() + 5000;
      for (;;) {
        await Bun.sleep(200);
        take();
        const before = peer?.recv;
        peer = await queues("router");
        if ((peer !== null && peer.recv === before && peer.recv === maxAck) || Date.now() > settleBy) break;
      }
      const host = await queues("host");
      const state = `peer queues ${JSON.stringify(peer)}, passt's socket ${JSON.stringify(host)}, ACKed ${maxAck} of ${sent}`;
      expect(peer, state).not.toBeNull();
      expect(peer!.recv, state).toBeGreaterThan(0);
      expect(peer!.recv, state).toBeLessThan(UPLOAD_BYTES / 4);
      expect(maxAck, state).toBe(peer!.recv);
      expect(host?.send, state).toBe(UPLOAD_BYTES - peer!.recv); // the socket took it all

      // Our FIN: once either side closed, everything is acknowledged, FIN included.
      send(TcpFlag.FIN | TcpFlag.ACK, iss + 1 + sent, rcvNxt);
      const finAck = await c.waitFrame((f) => segment(f)?.ackNumber === ((iss + 1 + sent + 1) >>> 0), 2000);
      expect(finAck, `FIN not acknowledged: ${state}`).not.toBeNull();
      send(TcpFlag.RST, iss + 2 + sent, 0);
    } finally {
      c.close();
    }
  }, 30_000);
});
