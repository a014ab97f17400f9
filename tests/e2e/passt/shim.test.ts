// SPDX-License-Identifier: GPL-2.0-or-later
// shim.test.ts - the shared guest checks through ../shared/vm/run-shim.sh: a namespace's tap wired to passt's socket
//
// tapshim.py relays frames between a tap device in a third namespace and passt's UNIX socket,
// with qemu's framing, so that namespace's kernel is the guest: DHCPv4 (busybox udhcpc), SLAAC,
// DHCPv6 (ISC dhclient), ping, TCP to the gateway and a remote host, a 4 MiB download and 1 MiB
// upload checked by sha256, UDP echo, and inbound -t 8081 / -u 8082. About 10 s per binary.

import { describe, expect, test } from "bun:test";
import { passtBinaries } from "./_client.ts";
import { ALL_CHECKS, runVmlab, UPSTREAM_2023_XFAIL, vmlabUnavailable } from "./_vmlab.ts";
import { existsSync } from "node:fs";

const RUN_TIMEOUT_MS = 150_000;

describe.each(passtBinaries().map((b) => [b.name, b] as const))("run-shim.sh (%s)", (_name, bin) => {
  const skip = vmlabUnavailable("run-shim.sh", ["dhclient"]) ?? (existsSync(bin.path) ? null : `${bin.path} does not exist (run \`npm run build\`?)`);
  if (skip) console.warn(`[e2e] skipping run-shim.sh for ${bin.path}: ${skip}`);

  test.skipIf(!!skip)("every guest check passes over the qemu socket", async () => {
    const xfail = bin.upstream2023 ? UPSTREAM_2023_XFAIL : [];
    const run = await runVmlab("run-shim.sh", bin.path, { XFAIL: xfail.join(","), TIMEOUT: "120" }, RUN_TIMEOUT_MS);
    const failed = run.results.filter((r) => r.verdict === "FAIL").map((r) => `${r.check}: ${r.detail}`);
    expect(failed, run.output).toEqual([]);
    expect(run.results.map((r) => r.check).sort(), run.output).toEqual([...ALL_CHECKS].sort());
    expect(run.summary ?? "", run.output).toStartWith("VMLAB-SUMMARY PASS");
    expect(run.code, run.output).toBe(0);
  }, RUN_TIMEOUT_MS + 10_000);
});
