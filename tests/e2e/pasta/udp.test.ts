// SPDX-License-Identifier: GPL-2.0-or-later
// udp.test.ts - UDP echo through pasta both ways, 1,200- and 60,000-byte datagrams, IPv4 and IPv6
//
// From the namespace out: a client in pasta's namespace sends each datagram to an echo server
// on the host's loopback (through the gateway 198.51.100.1 / 2001:db8::1) or on the router
// (203.0.113.5 / 2001:db8:1::5) and checks that the same bytes come back.
// From the host in: pasta runs `-t 9141 -u 9140` with an echo server on [::]:9140 inside its
// namespace; a client on the host sends to 127.0.0.1, ::1, 198.51.100.10 and 2001:db8::10.
// 60,000 bytes fit the tap's 65520-byte MTU in one frame; on the 1500-byte veth to the router
// the host kernel fragments them.
//
// Debian's pasta (upstream 2023-03) skips two cases, marked `in2023: false`: UDP to the IPv6
// gateway gets no reply (2023 maps the gateway to the host's loopback for UDP only after recent
// loopback traffic, REFERENCE.md section 2), and a datagram from the host's 2001:db8::10 keeps
// that source, which is the namespace's own address too: the echo never comes back.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";
import { L4 } from "./_l4.ts";

const PORT_OUT = 9130;
const PORT_IN = 9140;
const SIZES = [1200, 60000];

const OUTBOUND = [
  { what: "host 127.0.0.1 through the gateway 198.51.100.1", addr: ADDR.gw4, ns: "host", listen: "127.0.0.1", in2023: true },
  { what: "host ::1 through the gateway 2001:db8::1", addr: ADDR.gw6, ns: "host", listen: "::1", in2023: false },
  { what: "the router's 203.0.113.5", addr: ADDR.remote4, ns: "router", listen: ADDR.remote4, in2023: true },
  { what: "the router's 2001:db8:1::5", addr: ADDR.remote6, ns: "router", listen: ADDR.remote6, in2023: true },
] as const;

const INBOUND = [
  { what: "127.0.0.1", addr: "127.0.0.1", in2023: true },
  { what: "::1", addr: "::1", in2023: true },
  { what: "the host's address 198.51.100.10", addr: ADDR.host4, in2023: true },
  { what: "the host's address 2001:db8::10", addr: ADDR.host6, in2023: false },
] as const;

const expected = SIZES.map((size) => ({ size, ok: true }));

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta UDP (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin);
  let topo: Topology;
  let l4: L4;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    l4 = await L4.setup(topo, 1 << 20);
    for (const t of OUTBOUND) await l4.udpEcho(t.ns, t.listen, PORT_OUT);
    await l4.pastaServers(bin, ["-t", String(PORT_IN + 1), "-u", String(PORT_IN)], [{ cmd: "udp-echo", addr: "::", port: PORT_IN }]);
  }, 60_000);
  afterAll(async () => topo?.stop());

  for (const t of OUTBOUND) {
    test.skipIf(!!skip || (bin.upstream2023 && !t.in2023))(
      `datagrams of 1,200 and 60,000 bytes from the namespace to ${t.what} come back intact`,
      async () => {
        const { run, results } = await l4.clientInPasta(bin, [{ op: "udp-echo", addr: t.addr, port: PORT_OUT, sizes: SIZES }]);
        expect(results[0]?.results, explain("udp-echo", run)).toEqual(expected);
      },
      30_000,
    );
  }

  for (const t of INBOUND) {
    test.skipIf(!!skip || (bin.upstream2023 && !t.in2023))(
      `datagrams of 1,200 and 60,000 bytes from a host client at ${t.what} to the namespace come back intact`,
      async () => {
        const { run, results } = await l4.client("host", [{ op: "udp-echo", addr: t.addr, port: PORT_IN, sizes: SIZES }]);
        expect(results[0]?.results, explain("udp-echo through -u", run)).toEqual(expected);
      },
      30_000,
    );
  }
});
