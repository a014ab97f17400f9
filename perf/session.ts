// SPDX-License-Identifier: GPL-2.0-or-later
// session.ts - one forwarder (our pasta, Debian's pasta or slirp4netns) serving one test namespace
//
// Theory of operation
//
// Every forwarder is measured the same way, inside the e2e topology of tests/harness/netns.ts
// (a private "host" namespace with a veth, run as root, forwarders as nobody):
//
//   host namespace                                   namespace held by `unshare -Urn` (nobody)
//   ──────────────                                   ───────────────────────────────────────────
//   iperf3 -s      127.0.0.1:5201  <─── tap path ───  iperf3 -c GW4/GW6           (GW: gateway)
//   tcp_rr server  127.0.0.1:5202  <─── tap path ───  tcp_rr client GW4 5202
//   soak bulk-server 127.0.0.1:5203 <── tap path ─  soak bulk-client GW4 5203   (soak.ts)
//   soak crr-server  127.0.0.1:5204 <── tap path ─  soak crr-client GW4 5204    (soak.ts)
//   iperf3 -c 127.0.0.1:5301       ─── forwarded ──>  iperf3 -s -p 5301
//   tcp_rr client 127.0.0.1:5302   ─── forwarded ──>  tcp_rr server 5302
//
// The forwarder attaches to the holder's namespace by PID, the way container runtimes use it:
//   pasta -f -q --config-net -m MTU -t 5301-5302 -u none -T none -U none PID
//   slirp4netns --configure --mtu=MTU --enable-ipv6 --api-socket S PID tap0   (+ add_hostfwd)
// pasta maps its gateway address to the host's loopback; slirp4netns does the same for 10.0.2.2
// and fd00::2. For pasta, "forwarded" is the splice path (sockets on both sides, no tap) when the
// binary has one: the probe in startSession() checks which address the namespace's server sees
// (loopback or the namespace's own address when spliced, the gateway address when the connection
// came through the tap). slirp4netns has no splice path; its row is its port forwarder.

import { readdirSync, readFileSync } from "node:fs";
import type { SpawnHandle, Topology } from "../tests/harness/netns.ts";
import { ADDR } from "../tests/harness/netns.ts";

/** Ports used inside the topology. */
export const PORT = {
  /** iperf3 -s on the host's loopback (tap paths, TCP and UDP). */
  hostIperf: 5201,
  /** tcp_rr server on the host's loopback (tap path). */
  hostRr: 5202,
  /** soak.c bulk-server on the host's loopback (soak.ts: long transfers over the tap). */
  hostBulk: 5203,
  /** soak.c crr-server on the host's loopback (soak.ts: connection churn over the tap). */
  hostCrr: 5204,
  /** iperf3 -s inside the namespace, reached from the host through the forwarded port. */
  nsIperf: 5301,
  /** tcp_rr server inside the namespace, reached through the forwarded port. */
  nsRr: 5302,
} as const;

/** Which program a tool is. */
export type ToolKind = "pasta" | "slirp4netns";

/** One forwarder under test. */
export interface Tool {
  /** Key in results: "ours", "debian", "slirp4netns". */
  readonly id: string;
  /** Column heading. */
  readonly label: string;
  readonly kind: ToolKind;
  /** Executable. */
  readonly bin: string;
}

/** A forwarder attached to a fresh namespace, with the servers of PORT running. */
export interface Session {
  readonly tool: Tool;
  readonly mtu: number;
  /** Address inside the namespace that reaches the host's 127.0.0.1. */
  readonly gw4: string;
  /** Address inside the namespace that reaches the host's ::1. */
  readonly gw6: string;
  /** pid (in our pid namespace) of the forwarder process itself. */
  readonly pid: number;
  /** For pasta: whether host-loopback connections to a forwarded port are spliced (null: slirp4netns). */
  readonly spliced: boolean | null;
  /** argv prefix that runs a command inside the namespace, as nobody. */
  enter(argv: string[]): string[];
  /** Kills the servers, the forwarder and the namespace holder. */
  stop(): Promise<void>;
}

/** Default timeout of a long-lived process in the topology: a safety net only. */
const LONG_LIVED_MS = 30 * 60_000;

/** Commands between our process and the forwarder: nsenter, its forked child, timeout, setpriv. */
const WRAPPERS = new Set(["nsenter", "timeout", "setpriv"]);

/** Returns the direct children of a process, across all its threads; empty if it is gone. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    } catch {}
  }
  return out;
}

/** Returns a process's comm (its executable's name, as the kernel truncates it), or null if gone. */
function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/**
 * Returns the pid of the program a SpawnHandle runs (the first process below the nsenter, timeout
 * and setpriv wrappers), or null if it is not running (yet).
 */
export function programPid(handle: SpawnHandle): number | null {
  let pid: number | undefined = handle.pid;
  for (let depth = 0; pid !== undefined && depth < 8; depth++) {
    const comm = commOf(pid);
    if (comm === null) return null;
    if (!WRAPPERS.has(comm)) return pid;
    pid = childrenOf(pid)[0];
  }
  return null;
}

/** Resolves once `probe` returns true; throws `what` after timeoutMs. */
async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** Resolves once something listens on TCP `port` in the namespace `enter` leads to (or the host). */
export async function waitListening(topo: Topology, port: number, enter: (a: string[]) => string[] = (a) => a): Promise<void> {
  await until(`a listener on port ${port}`, 10_000, async () => {
    const r = await topo.run(enter(["ss", "-Hltn"]));
    return r.stdout.includes(`:${port} `);
  });
}

/**
 * Returns the addresses a connection spliced into the namespace may come from: loopback, or
 * the namespace's own addresses (newer upstream, and we, connect the namespace side to the
 * namespace's external address). Over the tap, pasta presents a host-loopback peer as its
 * gateway address instead, which the namespace does not own.
 */
async function namespaceLocal(topo: Topology, enter: (a: string[]) => string[]): Promise<Set<string>> {
  const r = await topo.run(enter(["ip", "-j", "addr", "show"]));
  const local = new Set(["127.0.0.1", "::1"]);
  try {
    for (const link of JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[]) {
      for (const a of link.addr_info ?? []) if (a.local) local.add(a.local);
    }
  } catch {}
  return local;
}

/**
 * Starts `tool` on a new namespace with interface MTU `mtu`, starts the namespace's servers, and
 * resolves once routes are in place and the servers listen. `rr` is the path of the tcp_rr binary;
 * `env` is added to the forwarder's environment (BUN_OPTIONS for a profile, say).
 * Throws (after cleaning up) if the forwarder does not come up.
 */
export async function startSession(
  topo: Topology,
  tool: Tool,
  mtu: number,
  rr: string,
  env: Record<string, string> = {},
): Promise<Session> {
  // As long-lived as the forwarder: the default (300 s) would end longer sessions (soak.ts --limit).
  const holder = await topo.holdNamespace(LONG_LIVED_MS);
  const handles: SpawnHandle[] = [holder.handle];
  const stop = async () => {
    for (const h of handles.reverse()) if (h.alive()) await h.kill("SIGTERM");
  };
  try {
    let fwd: SpawnHandle;
    let gw4: string, gw6: string;
    if (tool.kind === "pasta") {
      fwd = topo.spawn(
        [
          tool.bin, "-f", "-q", "--config-net", "-m", String(mtu),
          "-t", `${PORT.nsIperf}-${PORT.nsRr}`, "-u", "none", "-T", "none", "-U", "none",
          String(holder.pid),
        ],
        { timeoutMs: LONG_LIVED_MS, env },
      );
      gw4 = ADDR.gw4;
      gw6 = ADDR.gw6;
    } else {
      const api = `${topo.dir}/slirp-${holder.pid}.sock`;
      fwd = topo.spawn(
        [tool.bin, "--configure", `--mtu=${mtu}`, "--enable-ipv6", "--api-socket", api, String(holder.pid), "tap0"],
        { timeoutMs: LONG_LIVED_MS, env },
      );
      gw4 = "10.0.2.2";
      gw6 = "fd00::2";
      await until("slirp4netns API socket", 10_000, async () => {
        if (!fwd.alive()) throw new Error(`slirp4netns exited: ${fwd.output().stderr}`);
        return (await topo.run(["test", "-S", api])).code === 0;
      });
      for (const port of [PORT.nsIperf, PORT.nsRr]) {
        const req = JSON.stringify({
          execute: "add_hostfwd",
          arguments: { proto: "tcp", host_addr: "127.0.0.1", host_port: port, guest_port: port },
        });
        const r = await topo.run(["socat", "-", `UNIX-CONNECT:${api}`], { stdin: req });
        if (!r.stdout.includes('"return"')) throw new Error(`slirp4netns add_hostfwd ${port}: ${r.stdout}${r.stderr}`);
      }
    }
    handles.push(fwd);
    await until(`${tool.label}: default routes in the namespace`, 15_000, async () => {
      if (!fwd.alive()) throw new Error(`${tool.label} exited: ${fwd.output().stderr}`);
      const r4 = await topo.run(holder.enter(["ip", "-4", "route", "show", "default"]));
      const r6 = await topo.run(holder.enter(["ip", "-6", "route", "show", "default"]));
      return r4.stdout.includes("default") && r6.stdout.includes("default");
    });
    const pid = programPid(fwd);
    if (pid === null) throw new Error(`${tool.label}: cannot find its process`);

    const iperf = topo.spawn(holder.enter(["iperf3", "-s", "-p", String(PORT.nsIperf)]), { timeoutMs: LONG_LIVED_MS });
    const rrServer = topo.spawn(holder.enter([rr, "server", String(PORT.nsRr)]), { timeoutMs: LONG_LIVED_MS });
    handles.push(iperf, rrServer);
    await waitListening(topo, PORT.nsIperf, holder.enter);
    await waitListening(topo, PORT.nsRr, holder.enter);

    // One short exchange through the forwarded port: warms the path up and shows the peer address
    // the namespace sees (loopback only if pasta spliced the connection).
    const probe = await topo.run([rr, "client", "127.0.0.1", String(PORT.nsRr), "0"]);
    if (probe.code !== 0) throw new Error(`${tool.label}: forwarded port ${PORT.nsRr} does not answer: ${probe.stderr}`);
    await Bun.sleep(50);
    const peers = [...rrServer.output().stdout.matchAll(/^peer (\S+)$/gm)].map((m) => m[1] ?? "");
    const last = (peers.at(-1) ?? "").replace(/^::ffff:/, "");
    const spliced = tool.kind === "pasta" ? (await namespaceLocal(topo, holder.enter)).has(last) : null;

    return { tool, mtu, gw4, gw6, pid, spliced, enter: holder.enter, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
