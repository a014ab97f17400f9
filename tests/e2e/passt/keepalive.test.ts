// SPDX-License-Identifier: GPL-2.0-or-later
// keepalive.test.ts - passt keeps a silent guest's TCP connections alive, and a guest that forgot one resets it
//
// The guest is this test: QemuClient on passt's socket, with TCP segments built by hand. It
// opens a connection to a server on the host's loopback (through the gateway address, which
// passt maps there), sends five bytes and goes silent. Within KEEPALIVE_S plus a few seconds it
// must get a keepalive: an ACK without data whose sequence number is one below the next one it
// expects, acknowledging its five bytes. It answers as a guest that rebooted would, with RST,
// and the server must see the connection reset within a second, not after the 2-hour idle
// timeout. Newer upstream passt (2025) sends these keepalives; Debian's 2023 passt does not, so
// this runs against ours only.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ADDR, Topology, suiteSkipReason, type SpawnHandle } from "../../harness/netns.ts";
import { TcpFlag, type TcpFields } from "../../../src/wire/tcp.ts";
import { dhcpDiscover, dhcpOffer, ipv4Bytes, passtBinaries, QemuClient, tcpFrame, tcpSegment } from "./_client.ts";

/** Upstream's KEEPALIVE_INTERVAL. */
const KEEPALIVE_S = 30;
const SERVER_PORT = 9300;
const GUEST_PORT = 45678;

/** Server in the host namespace: accepts one connection, then reports how it ends. */
const SERVER_PY = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${SERVER_PORT}))
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
print("accepted", flush=True)
try:
    while c.recv(65536):
        pass
    print("eof", flush=True)
except ConnectionResetError:
    print("reset", flush=True)
`;

/** Returns the TCP segment of `frame` if it goes to the guest's port from the server's, else null. */
const segment = (frame: Uint8Array) => tcpSegment(frame, SERVER_PORT, GUEST_PORT);

describe.each(passtBinaries().map((b) => [b.name, b] as const))("passt TCP keepalive to the guest (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin, ["python3"]) ?? (bin.upstream2023 ? "Debian's 2023 passt sends no keepalives" : null);
  let topo: Topology;
  let passt: SpawnHandle;
  let sock: string;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    sock = join(topo.dir, "passt.socket");
    passt = topo.spawn([bin.path, "-f", "-s", sock, "-l", join(topo.dir, "passt.log")]);
    for (let i = 0; i < 200 && !existsSync(sock); i++) await Bun.sleep(25);
    if (!existsSync(sock)) throw new Error(`passt did not create its socket: ${passt.output().stderr}`);
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)(`a silent guest gets a keepalive after ${KEEPALIVE_S} s; its RST resets the host socket`, async () => {
    const server = topo.spawn(["python3", "-c", SERVER_PY]);
    for (let i = 0; i < 200 && !server.output().stdout.includes("listening"); i++) await Bun.sleep(25);
    expect(server.output().stdout, server.output().stderr).toContain("listening");

    const c = await QemuClient.connect(sock);
    try {
      // A lease tells us passt's MAC address and the guest's address, and passt our MAC address.
      const id = 0x42;
      c.sendFrame(dhcpDiscover(0x6b656570, id));
      const offer = await c.waitFrame((f) => dhcpOffer(f, 0x6b656570) !== null);
      expect(offer).not.toBeNull();
      const passtMac = offer!.slice(6, 12);
      const guestMac = Uint8Array.of(0x02, 0, 0, 0, 0, id);
      const guest = ipv4Bytes(dhcpOffer(offer!, 0x6b656570)!);
      const gateway = ipv4Bytes(ADDR.gw4);
      const send = (flags: number, seq: number, ack: number, extra: Partial<TcpFields> = {}, payload?: Uint8Array) =>
        c.sendFrame(tcpFrame({ src: guestMac, dst: passtMac }, guest, gateway, {
          srcPort: GUEST_PORT, dstPort: SERVER_PORT, seqNumber: seq >>> 0, ackNumber: ack >>> 0, flags, window: 65535, ...extra,
        }, payload));

      // Handshake, then five bytes, then silence.
      const iss = 0x10000000;
      send(TcpFlag.SYN, iss, 0, { mss: 1460 });
      const synAck = await c.waitFrame((f) => segment(f)?.syn === true);
      expect(synAck, "no SYN-ACK").not.toBeNull();
      const rcvNxt = (segment(synAck!)!.seqNumber + 1) >>> 0;
      send(TcpFlag.ACK, iss + 1, rcvNxt);
      send(TcpFlag.ACK | TcpFlag.PSH, iss + 1, rcvNxt, {}, new TextEncoder().encode("hello"));
      const quietFrom = Date.now();
      const acked = await c.waitFrame((f) => segment(f)?.ackNumber === ((iss + 6) >>> 0));
      expect(acked, "the five bytes were not acknowledged").not.toBeNull();
      for (let i = 0; i < 100 && !server.output().stdout.includes("accepted"); i++) await Bun.sleep(20);
      expect(server.output().stdout).toContain("accepted");

      const keepalive = await c.waitFrame((f) => {
        const t = segment(f);
        return t !== null && t.flags === TcpFlag.ACK && t.payload.byteLength === 0 && t.seqNumber === ((rcvNxt - 1) >>> 0);
      }, (KEEPALIVE_S + 5) * 1000);
      const after = (Date.now() - quietFrom) / 1000;
      expect(keepalive, `no keepalive within ${after.toFixed(1)} s`).not.toBeNull();
      expect(after).toBeGreaterThanOrEqual(KEEPALIVE_S - 1);
      expect(segment(keepalive!)!.ackNumber).toBe((iss + 6) >>> 0);
      expect(server.output().stdout).not.toContain("reset");

      // The guest forgot the connection: RST, as Linux answers a segment with ACK set.
      send(TcpFlag.RST, segment(keepalive!)!.ackNumber, 0);
      const resetBy = Date.now() + 1000;
      while (!/reset|eof/.test(server.output().stdout) && Date.now() < resetBy) await Bun.sleep(20);
      expect(server.output().stdout).toContain("reset");
    } finally {
      c.close();
      await server.kill("SIGKILL");
    }
  }, (KEEPALIVE_S + 25) * 1000);
});
