// SPDX-License-Identifier: GPL-2.0-or-later
// guest.ts - the guest-facing data path: local services and L4 translators behind one input function
//
// Shared by pasta (tap device) and passt (qemu socket): whatever carries the
// frames calls `input` for each frame of a batch and `batchEnd` once after it.
// Once per loop turn, flow timers run (idle flows expire) and, at most every
// second, the NDP timer may send an unsolicited router advertisement.

import type { Ctx } from "./ctx.ts";
import { flows } from "./flow/table.ts";
import type { Loop } from "./loop/loop.ts";
import { icmpInit } from "./proto/icmp.ts";
import { arpSendInitReq } from "./proto/arp.ts";
import { dhcpv6Init } from "./proto/dhcpv6.ts";
import { ndpSendInitReq, ndpTimer } from "./proto/ndp.ts";
import { tcp4, tcp6, tcpBatchEnd, tcpInit } from "./proto/tcp.ts";
import { udpInit } from "./proto/udp.ts";
import type { TapSink } from "./tap/frame.ts";
import { setL4Handlers, tapInput, tapInputBatchEnd } from "./tap/input.ts";

/** The two entry points of the guest path. */
export interface GuestPath {
  readonly input: (frame: Uint8Array) => void;
  readonly batchEnd: () => void;
  /** Call once the guest is connected: probes for its MAC address. */
  readonly ready: () => void;
}

/** Returns the guest path for `ctx`, with its translators registered in `loop`. */
export function setupGuestPath(ctx: Ctx, loop: Loop, tap: TapSink): GuestPath {
  const conf = ctx.conf;
  const icmp = conf.noIcmp ? null : icmpInit(ctx, loop, tap);
  const udp = conf.noUdp ? null : udpInit(ctx, loop, tap);
  if (!conf.noTcp) tcpInit(ctx, loop, tap);
  if (ctx.ip6 && !conf.noDhcpv6) dhcpv6Init(ctx);
  setL4Handlers({
    ...(conf.noTcp ? {} : { tcp4, tcp6 }),
    ...(icmp ? { icmp4: icmp.icmp4, icmp6: icmp.icmp6 } : {}),
    ...(udp ? { udp4: udp.udp4, udp6: udp.udp6 } : {}),
    batchEnd: () => {
      udp?.batchEnd();
      if (!conf.noTcp) tcpBatchEnd();
    },
  });
  let lastTimerMs = 0;
  loop.onTurn(() => {
    const now = performance.now();
    flows.runTimers(now);
    if (now - lastTimerMs >= 1000) {
      lastTimerMs = now;
      if (ctx.ip6 && !conf.noNdp) ndpTimer(ctx, tap, now);
    }
  });
  return {
    input: (frame) => tapInput(ctx, tap, frame),
    ready: () => {
      // Ask the guest for its MAC, as upstream does when the tap comes up.
      if (ctx.ip4) arpSendInitReq(ctx, tap);
      if (ctx.ip6 && !conf.noNdp) ndpSendInitReq(ctx, tap);
    },
    batchEnd: tapInputBatchEnd,
  };
}
