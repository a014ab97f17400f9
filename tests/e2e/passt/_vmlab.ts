// SPDX-License-Identifier: GPL-2.0-or-later
// _vmlab.ts - runs the shared guest scripts (../shared/vm: run-shim.sh, run-vm.sh) and reads their results
//
// The scripts print one line per guest check, `VMLAB-RESULT <check> PASS|FAIL|XFAIL <detail>`, then
// `VMLAB-SUMMARY PASS|FAIL ...`. Each run is started in its own pid and mount namespace
// (`unshare --pid --fork --mount-proc --kill-child`), so killing it on a timeout, or the test
// process dying, takes passt, qemu, the tap shim and the servers down with it.

import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";

/** The shared folder: ../shared beside the repository (CI has a copy there), or $VMLAB_SHARED. */
export const SHARED_DIR = process.env.VMLAB_SHARED ?? resolve(import.meta.dir, "../../../../shared");
/** The guest scripts. */
export const VM_DIR = resolve(SHARED_DIR, "vm");

const PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** One `VMLAB-RESULT` line. */
export interface CheckResult {
  check: string;
  verdict: "PASS" | "FAIL" | "XFAIL";
  detail: string;
}

/** What a script run printed, parsed. */
export interface VmlabRun {
  /** Exit status of the script (0 when every check passed); 137 if it was killed on the timeout. */
  code: number;
  results: CheckResult[];
  /** The `VMLAB-SUMMARY` line, or null if the guest never got that far. */
  summary: string | null;
  /** Everything the script printed (stdout and stderr), for failure messages. */
  output: string;
}

/** Returns why a shared script cannot run here (not root, a tool or the script missing), or null. */
export function vmlabUnavailable(script: string, tools: string[]): string | null {
  if (process.getuid?.() !== 0) return "the guest scripts need root (user and network namespaces, tap devices)";
  if (!existsSync(resolve(VM_DIR, script))) return `${resolve(VM_DIR, script)} not found (set VMLAB_SHARED to the shared folder)`;
  const missing = ["unshare", "nsenter", "ip", "python3", "busybox", "bc", "gcc", ...tools].filter(
    (t) => Bun.which(t, { PATH: PATH_ENV }) === null,
  );
  return missing.length ? `missing tools: ${missing.join(", ")}` : null;
}

/**
 * Runs `script` (run-shim.sh or run-vm.sh of the shared folder, or a path) against the passt
 * binary `passt` and resolves with its parsed output; kills the whole run after `timeoutMs`.
 * Removes the run's work folder (under $VM_CACHE) afterwards: its passt.log tail is in the output.
 */
export async function runVmlab(script: string, passt: string, env: Record<string, string>, timeoutMs: number): Promise<VmlabRun> {
  const proc = Bun.spawn(
    ["unshare", "--pid", "--mount", "--fork", "--mount-proc", "--kill-child=SIGKILL", resolve(VM_DIR, script), passt],
    {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, PATH: PATH_ENV, ...env },
    },
  );
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  const output = stdout + stderr;
  const results: CheckResult[] = [];
  let summary: string | null = null;
  for (const line of output.split("\n")) {
    const r = /VMLAB-RESULT (\S+) (PASS|FAIL|XFAIL) ?(.*)$/.exec(line);
    if (r) results.push({ check: r[1]!, verdict: r[2] as CheckResult["verdict"], detail: r[3]! });
    const s = /(VMLAB-SUMMARY .*)$/.exec(line);
    if (s) summary = s[1]!;
  }
  const workdir = /workdir (\/\S+)/.exec(output)?.[1];
  if (workdir && /\/(shim|run|reconnect)\.[^/]+$/.test(workdir)) rmSync(workdir, { recursive: true, force: true });
  return { code: proc.signalCode ? 128 + 9 : code, results, summary, output };
}

/** Checks every run of the scripts must report (run-shim.sh and run-vm.sh print the same set). */
export const ALL_CHECKS = [
  "link", "dhcp4", "slaac", "dhcp6", "icmp4_gw", "icmp4_remote", "icmp6_remote",
  "tcp4_gw", "tcp6_gw", "tcp4_remote", "tcp6_remote", "tcp4_download_4MiB", "tcp4_upload_1MiB",
  "udp4_gw", "udp6_gw", "udp4_remote", "udp6_remote", "tcp_inbound", "udp_inbound",
] as const;

/** The script for a qemu killed mid-download followed by a second qemu (beside this file). */
export const VM_RECONNECT = resolve(import.meta.dir, "vm_reconnect.sh");

/**
 * Expected failures of Debian's 2023 passt (passed as XFAIL): a UDP reply from the IPv6
 * gateway comes back from its link-local address, not 2001:db8::1.
 */
export const UPSTREAM_2023_XFAIL = ["udp6_gw"];
