// SPDX-License-Identifier: GPL-2.0-or-later
// arp.ts - ARP: answer the guest's requests with our MAC, probe for its MAC, announce addresses (arp.c)
//
// We are every host on the guest's link but the guest itself: any request
// for another address is answered with our MAC (upstream now mirrors the
// host's neighbour MACs via rtnetlink; without that table, our MAC is what
// upstream answers too). Ignored, as upstream does (arp.c ignore_arp()):
//  - anything but an Ethernet/IPv4 REQUEST;
//  - announcements (RFC 5227 2.3: sender address equal to target address),
//    but not probes, whose sender address is 0.0.0.0;
//  - requests for the address we give the guest (ip4.addr), whether a probe
//    for duplicates or a question only the guest could answer.
// The reply goes to the requester's MAC (the Ethernet source), not to the
// MAC we learned, and is padded to the 60-byte Ethernet minimum as upstream's
// tap_send_single() pads every short frame.

import type { Ctx } from "../ctx.ts";
import { ethHeader, allocFrame, type TapSink } from "../tap/frame.ts";
import { addrEqual, isUnspecified } from "../wire/addr.ts";
import { ArpOperation, ArpView, type ArpFields } from "../wire/arp.ts";
import { EthernetView, EtherType } from "../wire/ethernet.ts";

/** Smallest Ethernet frame without FCS (IEEE 802.3): shorter ones are zero-padded. */
export const ETH_MIN_FRAME_BYTES = 60;

const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
const ZERO_MAC = new Uint8Array(6);

// Frame buffer and field record, allocated once; bytes 42-59 stay zero (padding).
const frame = allocFrame(ETH_MIN_FRAME_BYTES);
frame.fill(0);
const out = frame.subarray(0, ETH_MIN_FRAME_BYTES);
const fields: ArpFields = {
  operation: ArpOperation.REPLY,
  senderHardwareAddr: ZERO_MAC,
  senderProtocolAddr: ZERO_MAC,
  targetHardwareAddr: ZERO_MAC,
  targetProtocolAddr: ZERO_MAC,
};
const view = new ArpView();

/**
 * Handles an ARP packet from the guest (`eth` wraps the whole frame) and
 * answers it through `tap` when it is a request we answer (see the header).
 * Returns nothing; malformed packets are counted as "arpMalformed", ignored
 * ones as "arpIgnored".
 */
export function arp(ctx: Ctx, tap: TapSink, eth: EthernetView): void {
  const c4 = ctx.ip4;
  const a = view.wrap(eth.payload);
  if (!c4 || !a || eth.payload.byteLength < ArpView.ETHERNET_IPV4_LEN) {
    ctx.stats.drop("arpMalformed");
    return;
  }
  if (!a.isEthernetIpv4 || a.operation !== ArpOperation.REQUEST) {
    ctx.stats.drop("arpIgnored");
    return;
  }
  const sip = a.senderProtocolAddr;
  const tip = a.targetProtocolAddr;
  if ((!isUnspecified(sip) && addrEqual(sip, tip)) || addrEqual(tip, c4.addr)) {
    ctx.stats.drop("arpIgnored");
    return;
  }

  ethHeader(ctx, frame, EtherType.ARP, eth.srcMac);
  fields.operation = ArpOperation.REPLY;
  fields.senderHardwareAddr = ctx.ourMac;
  fields.senderProtocolAddr = tip;
  fields.targetHardwareAddr = a.senderHardwareAddr;
  fields.targetProtocolAddr = sip;
  ArpView.emit(frame, EthernetView.HEADER_LEN, fields);
  tap.send(out);
}

/**
 * Sends a broadcast request for the guest's address (ip4.addr) from our
 * address, so that the guest's answer tells us its MAC before it sends
 * anything (upstream arp_send_init_req(), on a new tap connection). Returns
 * nothing; does nothing without IPv4.
 */
export function arpSendInitReq(ctx: Ctx, tap: TapSink): void {
  const c4 = ctx.ip4;
  if (!c4) return;
  ethHeader(ctx, frame, EtherType.ARP, BROADCAST_MAC);
  fields.operation = ArpOperation.REQUEST;
  fields.senderHardwareAddr = ctx.ourMac;
  fields.senderProtocolAddr = c4.ourTapAddr;
  fields.targetHardwareAddr = BROADCAST_MAC;
  fields.targetProtocolAddr = c4.addr;
  ArpView.emit(frame, EthernetView.HEADER_LEN, fields);
  tap.send(out);
}

/**
 * Broadcasts an ARP announcement (RFC 5227 2.3: a request whose sender and
 * target addresses are both `ip`, target MAC zero) saying that `ip` (4 bytes)
 * is at `mac`, the Ethernet source being `mac` too, as upstream's
 * arp_announce() does when a neighbour's MAC changes. Returns nothing.
 */
export function arpAnnounce(ctx: Ctx, tap: TapSink, ip: Uint8Array, mac: Uint8Array): void {
  ethHeader(ctx, frame, EtherType.ARP, BROADCAST_MAC);
  frame.set(mac.subarray(0, 6), 6);
  fields.operation = ArpOperation.REQUEST;
  fields.senderHardwareAddr = mac;
  fields.senderProtocolAddr = ip;
  fields.targetHardwareAddr = ZERO_MAC;
  fields.targetProtocolAddr = ip;
  ArpView.emit(frame, EthernetView.HEADER_LEN, fields);
  tap.send(out);
}
