// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_fwd.test.ts - `pasta -t PORT`: host clients reach a server in the namespace, data both ways
//
// pasta runs `-t 9120 -u 9121` with a TCP server of _l4tool.py listening on [::]:9120 (IPv4 and
// IPv6) inside its namespace. Clients in the host namespace (root) connect to the forwarded port
// on loopback (127.0.0.1, ::1) and on the host's own addresses (198.51.100.10, 2001:db8::10),
// upload 32 MiB and download 32 MiB; both ends report the sha256 of what they received.
//
// Loopback clients take the splice path (tcp_splice.ts; splice.test.ts covers it, and
// `--no-splice` through the tap), the others the tap (tcp.ts: a SYN to the guest from the
// client's address). Either way the bytes must arrive intact, which is all this checks; a
// second pasta with --no-splice runs the loopback clients through the tap too (ours only:
// upstream 2023 has no --no-splice).
//
// Debian's pasta (upstream 2023-03) skips the client at 2001:db8::10: it keeps that source,
// which is the namespace's own address too, and the upload was reset in two runs of four.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason } from "../../harness/netns.ts";
import { L4, rate } from "./_l4.ts";

const TCP_PORT = 9120;
const UDP_PORT = 9121;
/** The second pasta, with --no-splice. */
const TCP_PORT_TAP = 9122;
const BYTES = 32 << 20;

const CLIENTS = [
  { what: "127.0.0.1", addr: "127.0.0.1", in2023: true },
  // 2023's splice over ::1 stalled a 32 MiB transfer for 60 s in a CI run (not ours: it splices
  // to the namespace's loopback there); it is left out for Debian so CI does not flake on it.
  { what: "::1", addr: "::1", in2023: false },
  { what: "the host's address 198.51.100.10", addr: ADDR.host4, in2023: true },
  { what: "the host's address 2001:db8::10", addr: ADDR.host6, in2023: false },
] as const;

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta -t forwarding (%s)", (name, bin) => {
  const skip = suiteSkipReason(bin);
  let topo: Topology;
  let l4: L4;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    l4 = await L4.setup(topo, BYTES);
    await l4.pastaServers(bin, ["-t", String(TCP_PORT), "-u", String(UDP_PORT)], [{ cmd: "tcp-server", addr: "::", port: TCP_PORT }]);
    if (!bin.upstream2023) {
      await l4.pastaServers(bin, ["--no-splice", "-t", String(TCP_PORT_TAP)], [{ cmd: "tcp-server", addr: "::", port: TCP_PORT_TAP }]);
    }
  }, 60_000);
  afterAll(async () => topo?.stop());

  for (const c of CLIENTS) {
    test.skipIf(!!skip || (bin.upstream2023 && !c.in2023))(
      `a host client at ${c.what} sends 32 MiB to the namespace's server and gets 32 MiB back`,
      async () => {
        const { run, results } = await l4.client("host", [
          { op: "put", addr: c.addr, port: TCP_PORT, n: BYTES },
          { op: "get", addr: c.addr, port: TCP_PORT, n: BYTES },
        ]);
        const [put, get] = results;
        expect(put, explain("upload through -t", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });
        expect(get, explain("download through -t", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });
        console.log(`[${name}] -t from ${c.addr}: up ${rate(BYTES, put!.secs)}, down ${rate(BYTES, get!.secs)}`);
      },
      60_000,
    );

    if (c.addr === "127.0.0.1" || c.addr === "::1") {
      test.skipIf(!!skip || bin.upstream2023)(
        `with --no-splice, a host client at ${c.what} sends 32 MiB through the tap and gets 32 MiB back`,
        async () => {
          const { run, results } = await l4.client("host", [
            { op: "put", addr: c.addr, port: TCP_PORT_TAP, n: BYTES },
            { op: "get", addr: c.addr, port: TCP_PORT_TAP, n: BYTES },
          ]);
          const [put, get] = results;
          expect(put, explain("upload through -t --no-splice", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });
          expect(get, explain("download through -t --no-splice", run)).toMatchObject({ bytes: BYTES, sha256: l4.sha(BYTES) });
          console.log(`[${name}] -t --no-splice from ${c.addr}: up ${rate(BYTES, put!.secs)}, down ${rate(BYTES, get!.secs)}`);
        },
        60_000,
      );
    }

    test.skipIf(!!skip)(`a port pasta does not forward is refused at ${c.what}`, async () => {
      const { run, results } = await l4.client("host", [{ op: "get", addr: c.addr, port: TCP_PORT + 100, n: 1 }]);
      expect(results[0]?.error, explain("connect to an unforwarded port", run)).toMatch(/ConnectionRefusedError/);
    }, 30_000);
  }
});
