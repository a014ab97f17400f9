// SPDX-License-Identifier: GPL-2.0-or-later
// fake_tap.ts - a TapSink that keeps what is sent, checker-style frame assertions, pcap output
//
// After gVisor's link/channel and checker packages: inject guest frames with
// FakeTap.input(), read what came back from `sent`, and assert layer by layer:
//
//   const tap = new FakeTap(ctx);
//   tap.input(discover);
//   expectFrame(tap.sent[0]!).ipv4({ src: "198.51.100.1", dst: "198.51.100.10" }).udp({ dstPort: 68 });
//
// Each layer method checks the fields given (addresses as text or bytes) and
// the checksum of that layer, then moves on to its payload. On failure, call
// tap.dumpPcap("name") (or use FakeTap.check()) to leave both directions in a
// .pcap file under the system temporary directory, for tshark.

import { expect } from "bun:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readFileSync, writeFileSync } from "node:fs";
import type { Ctx } from "../../src/ctx.ts";
import type { TapSink } from "../../src/tap/frame.ts";
import { tapInput } from "../../src/tap/input.ts";
import { formatIp, formatMac, parseIp, parseMac } from "../../src/wire/addr.ts";
import { ArpView } from "../../src/wire/arp.ts";
import { EthernetView, EtherType } from "../../src/wire/ethernet.ts";
import { IcmpView } from "../../src/wire/icmp.ts";
import { Icmpv6View } from "../../src/wire/icmpv6.ts";
import { IpProtocol, Ipv4View } from "../../src/wire/ipv4.ts";
import { Ipv6View } from "../../src/wire/ipv6.ts";
import { TcpView } from "../../src/wire/tcp.ts";
import { UdpView } from "../../src/wire/udp.ts";

/** Frames sent to the guest, and every frame that crossed in either direction, in order. */
export class FakeTap implements TapSink {
  /** Copies of the frames sent to the guest, oldest first. */
  readonly sent: Uint8Array[] = [];
  /** Both directions in order, for pcap files. */
  readonly log: Uint8Array[] = [];
  /** What send() returns: set false to play a full queue. */
  accept = true;

  constructor(readonly ctx: Ctx) {}

  send(frame: Uint8Array): boolean {
    const copy = frame.slice();
    this.sent.push(copy);
    this.log.push(copy);
    return this.accept;
  }

  /** Hands `frame` to tapInput() as the guest would, and returns the frames sent in answer. */
  input(frame: Uint8Array): Uint8Array[] {
    this.log.push(frame.slice());
    const before = this.sent.length;
    tapInput(this.ctx, this, frame);
    return this.sent.slice(before);
  }

  /** Forgets what was sent and logged. */
  clear(): void {
    this.sent.length = 0;
    this.log.length = 0;
  }

  /** Writes the log to `<tmpdir>/<name>.pcap` and returns the path. */
  dumpPcap(name: string): string {
    const path = join(tmpdir(), `${name.replace(/[^\w.-]+/g, "_")}.pcap`);
    writePcap(path, this.log);
    return path;
  }

  /**
   * Runs `fn`; if it throws, writes the log as a pcap (see dumpPcap) and
   * rethrows with the path added to the message.
   */
  check(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      const path = this.dumpPcap(name);
      if (e instanceof Error) e.message += `\n(frames written to ${path})`;
      throw e;
    }
  }
}

/**
 * Writes `frames` as a classic pcap file (microsecond timestamps, one frame
 * per millisecond from 0, Ethernet link type) at `path`. Throws on I/O errors.
 */
export function writePcap(path: string, frames: readonly Uint8Array[]): void {
  let size = 24;
  for (const f of frames) size += 16 + f.byteLength;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xa1b2c3d4, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  dv.setUint32(16, 65535 + 14, true);
  dv.setUint32(20, 1, true);
  let off = 24;
  frames.forEach((f, i) => {
    dv.setUint32(off, Math.floor(i / 1000), true);
    dv.setUint32(off + 4, (i % 1000) * 1000, true);
    dv.setUint32(off + 8, f.byteLength, true);
    dv.setUint32(off + 12, f.byteLength, true);
    out.set(f, off + 16);
    off += 16 + f.byteLength;
  });
  writeFileSync(path, out);
}

/** An address given as text ("198.51.100.1", "fe80::1", "9a:55:9a:55:9a:55") or bytes. */
export type Addr = string | Uint8Array;

function addrText(a: Addr): string {
  if (typeof a !== "string") return a.byteLength === 6 ? formatMac(a) : formatIp(a);
  const bytes = a.length === 17 && a[2] === ":" ? parseMac(a) : parseIp(a);
  if (!bytes) throw new Error(`checker: not an address: ${a}`);
  return bytes.byteLength === 6 ? formatMac(bytes) : formatIp(bytes);
}

function checkAddr(what: string, actual: Uint8Array, want: Addr | undefined): void {
  if (want === undefined) return;
  const text = actual.byteLength === 6 ? formatMac(actual) : formatIp(actual);
  expect(`${what} ${text}`).toBe(`${what} ${addrText(want)}`);
}

function checkField(what: string, actual: number | boolean, want: number | boolean | undefined): void {
  if (want !== undefined) expect(`${what} ${actual}`).toBe(`${what} ${want}`);
}

/** Checks the layers of one frame, outside in. */
export class FrameChecker {
  private l3: Ipv4View | Ipv6View | null = null;
  private l4: Uint8Array | null = null;
  private readonly eth: EthernetView;

  constructor(readonly frame: Uint8Array) {
    const eth = EthernetView.parse(frame);
    expect(eth).not.toBeNull();
    this.eth = eth!;
  }

  /** Checks the Ethernet header. */
  ether(want: { src?: Addr; dst?: Addr; etherType?: number }): this {
    checkAddr("ethernet source", this.eth.srcMac, want.src);
    checkAddr("ethernet destination", this.eth.dstMac, want.dst);
    checkField("ethertype", this.eth.etherType, want.etherType);
    return this;
  }

  /** Checks that this is an Ethernet/IPv4 ARP packet with the fields given. */
  arp(want: { operation?: number; senderMac?: Addr; senderIp?: Addr; targetMac?: Addr; targetIp?: Addr }): this {
    checkField("ethertype", this.eth.etherType, EtherType.ARP);
    const a = ArpView.parse(this.eth.payload);
    expect(a?.isEthernetIpv4).toBe(true);
    checkField("arp operation", a!.operation, want.operation);
    checkAddr("arp sender MAC", a!.senderHardwareAddr, want.senderMac);
    checkAddr("arp sender IP", a!.senderProtocolAddr, want.senderIp);
    checkAddr("arp target MAC", a!.targetHardwareAddr, want.targetMac);
    checkAddr("arp target IP", a!.targetProtocolAddr, want.targetIp);
    return this;
  }

  /** Checks an IPv4 header, its checksum, and that it fills the frame (padding aside). */
  ipv4(want: { src?: Addr; dst?: Addr; protocol?: number; ttl?: number; dontFragment?: boolean; identification?: number }): this {
    checkField("ethertype", this.eth.etherType, EtherType.IPV4);
    const ip = Ipv4View.parse(this.eth.payload);
    expect(ip).not.toBeNull();
    expect(ip!.verifyChecksum()).toBe(true);
    checkAddr("ipv4 source", ip!.srcAddr, want.src);
    checkAddr("ipv4 destination", ip!.dstAddr, want.dst);
    checkField("ipv4 protocol", ip!.protocol, want.protocol);
    checkField("ipv4 ttl", ip!.ttl, want.ttl);
    checkField("ipv4 DF", ip!.dontFragment, want.dontFragment);
    checkField("ipv4 identification", ip!.identification, want.identification);
    this.l3 = ip;
    this.l4 = ip!.payload;
    return this;
  }

  /** Checks an IPv6 header and that its payload length matches the frame. */
  ipv6(want: { src?: Addr; dst?: Addr; nextHeader?: number; hopLimit?: number; flowLabel?: number }): this {
    checkField("ethertype", this.eth.etherType, EtherType.IPV6);
    const ip = Ipv6View.parse(this.eth.payload);
    expect(ip).not.toBeNull();
    expect(Ipv6View.HEADER_LEN + ip!.payloadLength).toBe(this.eth.payload.byteLength);
    checkAddr("ipv6 source", ip!.srcAddr, want.src);
    checkAddr("ipv6 destination", ip!.dstAddr, want.dst);
    checkField("ipv6 next header", ip!.upperLayerProtocol, want.nextHeader);
    checkField("ipv6 hop limit", ip!.hopLimit, want.hopLimit);
    checkField("ipv6 flow label", ip!.flowLabel, want.flowLabel);
    this.l3 = ip;
    this.l4 = ip!.upperLayerPayload;
    return this;
  }

  private layer4(protocol: number): { src: Uint8Array; dst: Uint8Array; bytes: Uint8Array } {
    const ip = this.l3;
    if (!ip || !this.l4) throw new Error("checker: call ipv4() or ipv6() before an L4 check");
    const actual = ip instanceof Ipv4View ? ip.protocol : ip.upperLayerProtocol;
    expect(`protocol ${actual}`).toBe(`protocol ${protocol}`);
    return { src: ip.srcAddr, dst: ip.dstAddr, bytes: this.l4 };
  }

  /**
   * Checks a UDP header: its length against the IP payload, and its checksum
   * (`checksum: "zero"` wants none, as passt sends over IPv4; otherwise a
   * non-zero checksum must verify).
   */
  udp(want: { srcPort?: number; dstPort?: number; checksum?: "zero" | "valid" }): this {
    const l = this.layer4(IpProtocol.UDP);
    const u = UdpView.parse(l.bytes);
    expect(u).not.toBeNull();
    expect(u!.length).toBe(l.bytes.byteLength);
    checkField("udp source port", u!.srcPort, want.srcPort);
    checkField("udp destination port", u!.dstPort, want.dstPort);
    if (want.checksum === "zero") expect(u!.checksum).toBe(0);
    if (want.checksum === "valid") expect(u!.checksum).not.toBe(0);
    expect(u!.verifyChecksum(l.src, l.dst)).toBe(true);
    this.l4 = u!.payload;
    return this;
  }

  /** Checks a TCP header and its checksum. `flags` is the whole flags byte (TcpFlag bits). */
  tcp(want: { srcPort?: number; dstPort?: number; seq?: number; ack?: number; flags?: number; window?: number }): this {
    const l = this.layer4(IpProtocol.TCP);
    const t = TcpView.parse(l.bytes);
    expect(t).not.toBeNull();
    expect(t!.verifyChecksum(l.src, l.dst)).toBe(true);
    checkField("tcp source port", t!.srcPort, want.srcPort);
    checkField("tcp destination port", t!.dstPort, want.dstPort);
    checkField("tcp sequence number", t!.seqNumber, want.seq);
    checkField("tcp acknowledgement number", t!.ackNumber, want.ack);
    checkField("tcp flags", t!.flags, want.flags);
    checkField("tcp window", t!.window, want.window);
    this.l4 = t!.payload;
    return this;
  }

  /** Checks an ICMP header and checksum. */
  icmp(want: { type?: number; code?: number; identifier?: number; sequence?: number }): this {
    const l = this.layer4(IpProtocol.ICMP);
    const m = IcmpView.parse(l.bytes);
    expect(m).not.toBeNull();
    expect(m!.verifyChecksum()).toBe(true);
    checkField("icmp type", m!.type, want.type);
    checkField("icmp code", m!.code, want.code);
    checkField("icmp identifier", m!.identifier, want.identifier);
    checkField("icmp sequence", m!.sequenceNumber, want.sequence);
    return this;
  }

  /** Checks an ICMPv6 header and checksum; payload() then returns the whole message. */
  icmpv6(want: { type?: number; code?: number }): this {
    const l = this.layer4(IpProtocol.ICMPV6);
    const m = Icmpv6View.parse(l.bytes);
    expect(m).not.toBeNull();
    expect(m!.verifyChecksum(l.src, l.dst)).toBe(true);
    checkField("icmpv6 type", m!.type, want.type);
    checkField("icmpv6 code", m!.code, want.code);
    return this;
  }

  /** Returns what the last check left: the L4 payload (UDP, TCP), the ICMP message, or the IP payload. */
  payload(): Uint8Array {
    if (!this.l4) throw new Error("checker: no layer checked yet");
    return this.l4;
  }
}

/** Starts checking `frame`; throws (an expect failure) unless it holds an Ethernet header. */
export function expectFrame(frame: Uint8Array | undefined): FrameChecker {
  expect(frame).toBeDefined();
  return new FrameChecker(frame!);
}

/** Returns a copy of the bytes of tests/fixtures/`name` (one whole Ethernet frame). Throws if absent. */
export function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
}
