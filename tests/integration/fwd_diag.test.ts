// SPDX-License-Identifier: GPL-2.0-or-later
// fwd_diag.test.ts - the sock_diag TCP listener scan against the kernel, in namespaces made by the test
//
// Tests run as root here; pasta does not. tests/integration/ns/diag_child.ts runs under
// `unshare -n` (a fresh network namespace standing for the host, lo up) as uid 65534, makes
// pasta's namespace inside it with the agent, opens sockets in both, scans, and reports JSON.

import { describe, expect, test } from "bun:test";

const BUN = process.execPath;
const CHILD = "tests/integration/ns/diag_child.ts";
const NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp";

/** Returns the exit status of a command run to completion, stdout and stderr ignored. */
function status(cmd: string[]): number {
  return Bun.spawnSync(cmd, { stdout: "ignore", stderr: "ignore" }).exitCode ?? -1;
}

const isRoot = process.getuid?.() === 0;
const rootless = isRoot && status(["sh", "-c", `${NOBODY} unshare -Urn true`]) === 0;

describe.skipIf(!rootless)("TCP listener scan through sock_diag, in namespaces", async () => {
  // `unshare -n` gives the child a network namespace of its own that dies with it.
  const proc = Bun.spawn(
    ["unshare", "-n", "sh", "-c", `ip link set lo up && exec ${NOBODY} ${BUN} run ${CHILD}`],
    { stdout: "pipe", stderr: "pipe", timeout: 60_000 },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`diag_child exited ${code}: ${stderr}`);
  const r = JSON.parse(stdout);
  const port: Record<string, number> = r.port;

  test("the work ran as uid 65534", () => {
    expect(r.uid).toBe(65534);
  });

  test("the namespace scan finds the IPv4, IPv6 and dual-stack listeners", () => {
    expect(r.ns.ports).toEqual(expect.arrayContaining([port.listen4, port.listen6, port.listenDual]));
    expect(r.ns.count).toBe(3);
  });

  test("the namespace scan does not find a socket only bound, nor sockets only connected", () => {
    for (const p of [port.boundOnly, port.connected4, port.connected6]) expect(r.ns.ports).not.toContain(p);
  });

  test("each side sees its own listeners only", () => {
    expect(r.ns.ports).not.toContain(port.hostListen);
    expect(r.host.ports).toEqual([port.hostListen]);
  });

  test("the scan finds what /proc/net/tcp and tcp6 of the namespace list, and repeats", () => {
    expect(r.ns.ports).toEqual(r.nsProc);
    expect(r.nsAgain).toEqual(r.ns);
  });

  test("the agent exits cleanly", () => {
    expect(r.agentStatus).toBe(0);
  });
});
