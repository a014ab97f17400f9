// SPDX-License-Identifier: GPL-2.0-or-later
// frame.ts - building frames to the guest: Ethernet and IP headers in front of a payload already in place
//
// Every frame we send starts at offset 0 of a buffer from the wasm arena (so
// checksums run in place): 14 bytes of Ethernet header, then 20 (IPv4) or 40
// (IPv6) bytes of IP header, then the L4 header and payload. Callers write the
// payload first at the offsets below, then call one of these to put the headers
// in front of it. Nothing here allocates per frame: the field records are reused.

import type { Ctx } from "../ctx.ts";
import { allocWasmArena } from "../wire/checksum.ts";
import { EthernetView, EtherType } from "../wire/ethernet.ts";
import { Ipv4View } from "../wire/ipv4.ts";
import { Ipv6View } from "../wire/ipv6.ts";
import type { Ipv4Fields } from "../wire/ipv4.ts";
import type { Ipv6Fields } from "../wire/ipv6.ts";
import type { EthernetFields } from "../wire/ethernet.ts";
import type { IovecList } from "../../syscalls/mod.ts";

/** Largest frame we build: a 65535-byte IP packet plus the Ethernet header. */
export const MAX_FRAME_BYTES = 65535 + EthernetView.HEADER_LEN;
/** Offset of the IP header in a frame. */
export const L3_OFFSET = EthernetView.HEADER_LEN;
/** Offset of the L4 header in an IPv4 frame (no IP options). */
export const L4_OFFSET4 = L3_OFFSET + Ipv4View.MIN_HEADER_LEN;
/** Offset of the L4 header in an IPv6 frame (no extension headers). */
export const L4_OFFSET6 = L3_OFFSET + Ipv6View.HEADER_LEN;

/**
 * Returns a frame buffer of MAX_FRAME_BYTES in wasm memory, for building replies.
 * For start-up only: each call takes memory for the life of the process.
 */
export function allocFrame(bytes = MAX_FRAME_BYTES): Uint8Array {
  return allocWasmArena(bytes);
}

const ethFields: EthernetFields = { dst: new Uint8Array(6), src: new Uint8Array(6), etherType: 0 };
const ip4Fields: Ipv4Fields = { src: new Uint8Array(4), dst: new Uint8Array(4), protocol: 0, payloadLength: 0 };
const ip6Fields: Ipv6Fields = { src: new Uint8Array(16), dst: new Uint8Array(16), nextHeader: 0, payloadLength: 0 };

/**
 * Writes the Ethernet header (ours to the guest's MAC, or to `dstMac`) at offset 0
 * of `frame` and returns its length.
 */
export function ethHeader(ctx: Ctx, frame: Uint8Array, etherType: number, dstMac: Uint8Array = ctx.guestMac): number {
  ethFields.dst = dstMac;
  ethFields.src = ctx.ourMac;
  ethFields.etherType = etherType;
  return EthernetView.emit(frame, 0, ethFields);
}

/**
 * Writes Ethernet and IPv4 headers in front of an L4 segment of `l4len` bytes that
 * is already at L4_OFFSET4, and returns the length of the whole frame. The IPv4
 * header checksum is filled; the L4 checksum is the caller's.
 */
export function ipv4Frame(ctx: Ctx, frame: Uint8Array, src: Uint8Array, dst: Uint8Array, protocol: number, l4len: number): number {
  ethHeader(ctx, frame, EtherType.IPV4);
  ip4Fields.src = src;
  ip4Fields.dst = dst;
  ip4Fields.protocol = protocol;
  ip4Fields.payloadLength = l4len;
  Ipv4View.emit(frame, L3_OFFSET, ip4Fields);
  return L4_OFFSET4 + l4len;
}

/**
 * Writes Ethernet and IPv6 headers in front of an L4 segment of `l4len` bytes that
 * is already at L4_OFFSET6, and returns the length of the whole frame.
 */
export function ipv6Frame(ctx: Ctx, frame: Uint8Array, src: Uint8Array, dst: Uint8Array, nextHeader: number, l4len: number, dstMac: Uint8Array = ctx.guestMac): number {
  ethHeader(ctx, frame, EtherType.IPV6, dstMac);
  ip6Fields.src = src;
  ip6Fields.dst = dst;
  ip6Fields.nextHeader = nextHeader;
  ip6Fields.payloadLength = l4len;
  Ipv6View.emit(frame, L3_OFFSET, ip6Fields);
  return L4_OFFSET6 + l4len;
}

/** Where frames to the guest go: the pasta tap fd, the passt socket, or a fake in tests. */
export interface TapSink {
  /**
   * True if the sink takes TCP frames larger than the guest's MSS and has them
   * cut into segments of `gsoSize` bytes (TCP segmentation offload: the virtio-net
   * header on pasta's tap), and TCP or UDP frames with a partial checksum.
   * Absent or false: every frame must fit the MTU and carry its checksum.
   */
  readonly tso?: boolean;
  /**
   * True if the sink also takes UDP frames carrying several datagrams, to be cut
   * into datagrams of `gsoSize` payload bytes (UDP segmentation offload, USO:
   * Linux 6.2+), and frames gathered from a `tail`. Implies `tso`.
   */
  readonly uso?: boolean;
  /**
   * Sends one whole Ethernet frame to the guest. The bytes may be reused as soon as
   * this returns. Returns false if the frame was dropped (queue full, guest gone).
   * With `gsoSize` (only where `tso` is true) the frame is one TCP segment or UDP
   * datagram over IPv4 or IPv6 without options or extension headers, whose checksum
   * field holds the folded, not inverted, pseudo-header sum (Linux's CHECKSUM_PARTIAL
   * convention), which the sink completes; if its payload is longer than `gsoSize`,
   * the sink cuts it into segments of `gsoSize` payload bytes (TCP), or (UDP, only
   * where `uso` is true) into datagrams of `gsoSize` payload bytes, the last one
   * possibly shorter, each with its UDP length and checksum. For such a UDP frame,
   * the IP and UDP lengths and the pseudo-header sum are those of the whole frame.
   * With `tail` (only where `uso` is true) the frame goes on with the bytes the
   * list points at: `frame` then holds the headers and the first payload only.
   */
  send(frame: Uint8Array, gsoSize?: number, tail?: IovecList | null): boolean;
}
