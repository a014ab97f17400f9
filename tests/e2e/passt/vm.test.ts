// SPDX-License-Identifier: GPL-2.0-or-later
// vm.test.ts - the shared guest checks in a real qemu guest: ../shared/vm/run-vm.sh (TCG, no KVM needed)
//
// A Debian kernel and a busybox initramfs boot under qemu with virtio-net on `-netdev stream` to
// passt's socket, then run the same checks as run-shim.sh. About 20 s per binary. The first run
// builds the initramfs into $VM_CACHE (default /tmp/passt-vm) and fetches the kernel package with
// `apt-get download`, which needs the apt lists (`apt-get update`) and the Debian mirror.
//
// vm_reconnect.sh (beside this file) then kills a qemu with SIGKILL while its guest downloads
// 4 MiB, and boots a second one on the same passt (without -1), which must pass every check:
// about 35 s, so it runs against ours only (Debian's passes it too, run by hand).

import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { passtBinaries } from "./_client.ts";
import { ALL_CHECKS, runVmlab, UPSTREAM_2023_XFAIL, VM_RECONNECT, vmlabUnavailable } from "./_vmlab.ts";

const RUN_TIMEOUT_MS = 300_000;
const VM_CACHE = process.env.VM_CACHE ?? resolve(process.env.TMPDIR ?? "/tmp", "passt-vm");

/** Returns why the kernel cannot be had: neither cached nor known to apt, or null. */
function kernelUnavailable(): string | null {
  if (existsSync(resolve(VM_CACHE, "out/initramfs.cpio.gz"))) return null;
  const deps = Bun.spawnSync(["apt-cache", "depends", "linux-image-cloud-amd64"], { stdout: "pipe", stderr: "pipe" });
  if (deps.exitCode !== 0 || !/Depends: linux-image-/.test(deps.stdout.toString())) {
    return "no cached guest kernel and apt does not know linux-image-cloud-amd64 (run apt-get update)";
  }
  return null;
}

describe.each(passtBinaries().map((b) => [b.name, b] as const))("run-vm.sh (%s)", (_name, bin) => {
  const skip =
    vmlabUnavailable("run-vm.sh", ["qemu-system-x86_64", "dhclient", "apt-get", "dpkg-deb", "gzip"]) ??
    (existsSync(bin.path) ? null : `${bin.path} does not exist (run \`npm run build\`?)`) ??
    kernelUnavailable();
  if (skip) console.warn(`[e2e] skipping run-vm.sh for ${bin.path}: ${skip}`);

  test.skipIf(!!skip)("every guest check passes in a qemu guest on -netdev stream", async () => {
    const xfail = bin.upstream2023 ? UPSTREAM_2023_XFAIL : [];
    const run = await runVmlab("run-vm.sh", bin.path, { XFAIL: xfail.join(","), TIMEOUT: "240" }, RUN_TIMEOUT_MS);
    const failed = run.results.filter((r) => r.verdict === "FAIL").map((r) => `${r.check}: ${r.detail}`);
    expect(failed, run.output).toEqual([]);
    expect(run.results.map((r) => r.check).sort(), run.output).toEqual([...ALL_CHECKS].sort());
    expect(run.summary ?? "", run.output).toStartWith("VMLAB-SUMMARY PASS");
    expect(run.code, run.output).toBe(0);
  }, RUN_TIMEOUT_MS + 10_000);

  test.skipIf(!!skip || bin.upstream2023)("after a qemu is killed mid-download, the next qemu passes every check", async () => {
    const run = await runVmlab(VM_RECONNECT, bin.path, { TIMEOUT: "240" }, RUN_TIMEOUT_MS);
    expect(run.output).toContain("first qemu killed");
    const failed = run.results.filter((r) => r.verdict === "FAIL").map((r) => `${r.check}: ${r.detail}`);
    expect(failed, run.output).toEqual([]);
    expect(run.results.map((r) => r.check).sort(), run.output).toEqual([...ALL_CHECKS].sort());
    expect(run.summary ?? "", run.output).toStartWith("VMLAB-SUMMARY PASS");
    expect(run.code, run.output).toBe(0);
  }, RUN_TIMEOUT_MS + 10_000);
});
