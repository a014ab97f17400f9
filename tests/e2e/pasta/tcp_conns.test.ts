// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_conns.test.ts - many TCP connections at once, resets both ways, peers that close early
//
// An echo server on the host's 127.0.0.1 (reached through the gateway 198.51.100.1) and on the
// router's 2001:db8:1::5 serves clients in pasta's namespace. Open connections are counted with
// `ss` in the host namespace, where pasta's host-side sockets live: once every client is done,
// none may be left but TIME-WAIT.
//
// Debian's pasta (upstream 2023-03) skips one test: see "a reset by the client".

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ADDR, Topology, explain, pastaBinaries, suiteSkipReason, waitUntil, type SpawnHandle } from "../../harness/netns.ts";
import { L4, type ToolResult } from "./_l4.ts";

const PORT = 9110;
const CONNECTIONS = 500;

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("pasta TCP connections (%s)", (name, bin) => {
  const skip = suiteSkipReason(bin, ["ss"]);
  let topo: Topology;
  let l4: L4;
  let hostServer: SpawnHandle;
  let routerServer: SpawnHandle;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    l4 = await L4.setup(topo, 64 << 20);
    hostServer = await l4.tcpServer("host", "127.0.0.1", PORT);
    routerServer = await l4.tcpServer("router", ADDR.remote6, PORT);
  }, 60_000);
  afterAll(async () => topo?.stop());

  /** Waits until no connection through PORT is left open in the host namespace; returns what is. */
  async function drained(timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const open = await l4.openSockets(PORT);
      if (open.length === 0 || Date.now() > deadline) return open;
      await Bun.sleep(200);
    }
  }

  test.skipIf(!!skip)(`${CONNECTIONS} concurrent connections each echo their own payload intact, then all close`, async () => {
    const { run, results } = await l4.clientInPasta(bin, [
      { op: "echo-many", addr: ADDR.gw4, port: PORT, count: CONNECTIONS, seed: 42, max: 256 << 10, timeout: 60 },
    ], { timeoutMs: 90_000 });
    const [r] = results;
    expect(r, explain("echo-many", run)).toMatchObject({ ok: CONNECTIONS, errors: [] });
    console.log(`[${name}] ${CONNECTIONS} echo connections in ${r!.secs.toFixed(2)} s`);
    expect(run.code, explain("pasta", run)).toBe(0);
    expect(await drained()).toEqual([]);
  }, 120_000);

  test.skipIf(!!skip).each([
    ["the gateway 198.51.100.1", ADDR.gw4],
    ["2001:db8:1::5", ADDR.remote6],
  ])("a reset by the server at %s reaches the client in the namespace as ECONNRESET", async (_what, addr) => {
    const { run, results } = await l4.clientInPasta(bin, [{ op: "rst-from-server", addr, port: PORT }]);
    expect(results[0], explain("rst-from-server", run)).toMatchObject({ result: "reset" });
  }, 30_000);

  // Upstream 2023 closes the host socket normally on the guest's RST: the server sees end of
  // file. Newer upstream and ours close it with SO_LINGER 0, so the reset reaches the server.
  test.skipIf(!!skip || bin.upstream2023).each([
    ["the gateway 198.51.100.1", ADDR.gw4, () => hostServer],
    ["2001:db8:1::5", ADDR.remote6, () => routerServer],
  ] as const)("a reset by the client in the namespace reaches the server at %s as ECONNRESET", async (_what, addr, server) => {
    const before = server().output().stdout.split("\n").length;
    const { run, results } = await l4.clientInPasta(bin, [{ op: "rst-to-server", addr, port: PORT }]);
    expect(results[0], explain("rst-to-server", run)).toMatchObject({ result: "sent" });
    const seen = await waitUntil(
      async () => ({ code: 0, stdout: server().output().stdout.split("\n").slice(before - 1).join("\n"), stderr: "" }),
      (r) => r.stdout.includes('"EXPECTRST"'),
    );
    expect(seen.stdout).toContain('{"server": "EXPECTRST", "result": "reset"}');
  }, 30_000);

  test.skipIf(!!skip)("peers that close early leave no connection behind, and pasta then carries 16 MiB each way", async () => {
    const go = join(topo.dir, `go.${name}`);
    rmSync(go, { force: true });
    const n = 16 << 20;
    const ops: ToolResult[] = [
      // The client stops reading after 1 MiB of 64 and closes: its kernel resets the connection.
      { op: "early-close-get", addr: ADDR.gw4, port: PORT, n: 64 << 20, read: 1 << 20, tag: "reader quits" },
      // The server stops reading after 1 MiB and closes while the client still sends.
      { op: "early-close-put", addr: ADDR.gw4, port: PORT, n: 64 << 20, drain: 1 << 20, tag: "server quits" },
      // Connect and close at once.
      { op: "connect-close", addr: ADDR.gw4, port: PORT, tag: "no data" },
      { op: "wait-file", path: go, secs: 30 },
      { op: "put", addr: ADDR.gw4, port: PORT, n },
      { op: "get", addr: ADDR.gw4, port: PORT, n },
    ];
    const client = l4.spawnClientInPasta(bin, ops);
    try {
      const firstThree = await waitUntil(
        async () => ({ code: 0, stdout: JSON.stringify(client.results()), stderr: "" }),
        () => client.results().length >= 3 || !client.handle.alive(),
        30_000,
      );
      const [reader, server, empty] = client.results();
      expect(reader, firstThree.stdout + explain("\npasta", { code: -1, ...client.handle.output() })).toMatchObject({ bytes: 1 << 20 });
      expect(["ConnectionResetError", "BrokenPipeError"]).toContain(server?.result);
      expect(empty).toMatchObject({ result: "closed" });
      expect(await drained(), "connections left open by pasta or the server").toEqual([]);
      writeFileSync(go, "");
      const run = await client.handle.wait(60_000);
      const rest = client.results().slice(3);
      expect(rest[1], explain("upload after early closes", run)).toMatchObject({ bytes: n, sha256: l4.sha(n) });
      expect(rest[2], explain("download after early closes", run)).toMatchObject({ bytes: n, sha256: l4.sha(n) });
      expect(run.code, explain("pasta", run)).toBe(0);
    } finally {
      if (client.handle.alive()) await client.handle.kill("SIGKILL");
    }
  }, 120_000);
});
