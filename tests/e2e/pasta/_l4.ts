// SPDX-License-Identifier: GPL-2.0-or-later
// _l4.ts - helpers for the TCP/UDP e2e tests: a data file, servers and clients from _l4tool.py
//
// Every transfer is checked by sha256: the tests send prefixes of one file of random bytes made
// once per topology (from /dev/urandom), whose sha256 for a given length the test computes
// itself; whatever end receives reports the sha256 and byte count of what arrived. The file lives
// in topo.dir, which Topology.stop() removes.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type PastaBinary, type RunResult, type SpawnHandle, type Topology, explain } from "../../harness/netns.ts";

/** Size of the random data file: the largest single transfer. */
export const DATA_BYTES = 256 << 20;

/** One JSON line of _l4tool.py output. */
export type ToolResult = Record<string, any>;

/** The tool, its data file and the servers of one topology. */
export class L4 {
  readonly tool: string;
  readonly data: string;
  private readonly shas = new Map<number, string>();
  private serial = 0;

  private constructor(readonly topo: Topology) {
    this.tool = topo.writeFile("l4tool.py", readFileSync(join(import.meta.dir, "_l4tool.py")), 0o755);
    this.data = join(topo.dir, "data.bin");
  }

  /** Copies the tool into the topology and makes the data file of `bytes` random bytes. */
  static async setup(topo: Topology, bytes = DATA_BYTES): Promise<L4> {
    const l4 = new L4(topo);
    const r = await topo.run(["sh", "-c", `head -c ${bytes} /dev/urandom > ${l4.data}`], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(explain("making the data file", r));
    return l4;
  }

  /** Returns the sha256 (hex) of the first `n` bytes of the data file. */
  sha(n: number): string {
    let s = this.shas.get(n);
    if (s === undefined) {
      const file = readFileSync(this.data);
      if (n > file.byteLength) throw new RangeError(`sha(${n}): the data file has ${file.byteLength} bytes`);
      s = new Bun.CryptoHasher("sha256").update(file.subarray(0, n)).digest("hex");
      this.shas.set(n, s);
    }
    return s;
  }

  /** Waits for a server's ready file; throws with its output if it exits or takes over 10 s. */
  private async ready(h: SpawnHandle, path: string, what: string): Promise<SpawnHandle> {
    for (let i = 0; i < 500; i++) {
      if (existsSync(path)) return h;
      if (!h.alive()) break;
      await Bun.sleep(20);
    }
    await h.kill("SIGKILL");
    throw new Error(explain(`${what} did not start`, await h.result));
  }

  /** Starts the TCP server (see _l4tool.py) on addr:port in a namespace of the topology, as root. */
  async tcpServer(ns: "host" | "router", addr: string, port: number, timeoutMs = 600_000): Promise<SpawnHandle> {
    const readyPath = join(this.topo.dir, `ready.${++this.serial}`);
    const h = this.topo.spawn(["python3", this.tool, "tcp-server", addr, String(port), this.data, readyPath], { ns, user: "root", timeoutMs });
    return this.ready(h, readyPath, `TCP server on ${addr} port ${port}`);
  }

  /** Starts the UDP echo server on addr:port in a namespace of the topology, as root. */
  async udpEcho(ns: "host" | "router", addr: string, port: number): Promise<SpawnHandle> {
    return this.udpServer("udp-echo", ns, addr, port);
  }

  /** Starts one of the tool's UDP servers (see _l4tool.py) on addr:port in a namespace of the topology, as root. */
  async udpServer(cmd: "udp-echo" | "udp-burst" | "udp-record", ns: "host" | "router", addr: string, port: number): Promise<SpawnHandle> {
    const readyPath = join(this.topo.dir, `ready.${++this.serial}`);
    const h = this.topo.spawn(["python3", this.tool, cmd, addr, String(port), readyPath], { ns, user: "root", timeoutMs: 600_000 });
    return this.ready(h, readyPath, `${cmd} server on ${addr} port ${port}`);
  }

  /**
   * Starts pasta (as nobody, --config-net, plus `args`) with servers of the tool inside its
   * namespace, each `cmd` ("tcp-server" or "udp-echo") on addr:port. Resolves once they all
   * listen; the handle is pasta's.
   */
  async pastaServers(bin: PastaBinary, args: string[], servers: { cmd: "tcp-server" | "udp-echo"; addr: string; port: number }[]): Promise<SpawnHandle> {
    const readyPaths: string[] = [];
    const lines = servers.map((srv) => {
      const readyPath = join(this.topo.dir, `ready.${++this.serial}`);
      readyPaths.push(readyPath);
      const tail = srv.cmd === "tcp-server" ? [this.data, readyPath] : [readyPath];
      return ["python3", this.tool, srv.cmd, srv.addr, String(srv.port), ...tail].map((a) => `'${a}'`).join(" ") + " &";
    });
    const script = `${lines.join("\n")}\nwait\n`;
    const h = this.topo.spawn([bin.path, "--config-net", ...args, "--", "sh", "-c", script], { timeoutMs: 600_000 });
    for (const p of readyPaths) await this.ready(h, p, `pasta ${args.join(" ")} with servers inside`);
    return h;
  }

  /**
   * Starts client operations inside a new pasta namespace in the background; results()
   * parses what the tool printed so far (one JSON object per line).
   */
  spawnClientInPasta(bin: PastaBinary, ops: ToolResult[], args: string[] = []): { handle: SpawnHandle; results: () => ToolResult[] } {
    const argv = [bin.path, "--config-net", ...args, "--", "python3", this.tool, "client", JSON.stringify(ops), this.data];
    const handle = this.topo.spawn(argv, { timeoutMs: 120_000 });
    return { handle, results: () => parse({ code: -1, stdout: handle.output().stdout, stderr: "" }).results };
  }

  /** Runs client operations inside a new pasta namespace (pasta as nobody, --config-net, plus `args`). */
  async clientInPasta(bin: PastaBinary, ops: ToolResult[], opts: { args?: string[]; timeoutMs?: number } = {}): Promise<{ run: RunResult; results: ToolResult[] }> {
    const argv = [bin.path, "--config-net", ...(opts.args ?? []), "--", "python3", this.tool, "client", JSON.stringify(ops), this.data];
    return parse(await this.topo.run(argv, { timeoutMs: opts.timeoutMs ?? 120_000 }));
  }

  /** Runs client operations in a namespace of the topology (as root), outside pasta. */
  async client(ns: "host" | "router", ops: ToolResult[], timeoutMs = 60_000): Promise<{ run: RunResult; results: ToolResult[] }> {
    return parse(await this.topo.run(["python3", this.tool, "client", JSON.stringify(ops), this.data], { ns, user: "root", timeoutMs }));
  }

  /**
   * Returns the TCP sockets in the host namespace with local or remote port `port`, except
   * listeners and TIME-WAIT: pasta's host-side sockets and those of a host server, while any
   * connection through that port is still open.
   */
  async openSockets(port: number): Promise<string[]> {
    const r = await this.topo.run(["ss", "-Htan", `( sport = :${port} or dport = :${port} )`], { user: "root" });
    return r.stdout.split("\n").filter((l) => l.trim() && !/^(LISTEN|TIME-WAIT)\s/.test(l));
  }
}

function parse(run: RunResult): { run: RunResult; results: ToolResult[] } {
  const results: ToolResult[] = [];
  for (const line of run.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      results.push(JSON.parse(line));
    } catch {}
  }
  return { run, results };
}

/** Formats a transfer rate for the test output, e.g. "256 MiB in 1.9 s (1.13 Gbit/s)". */
export function rate(bytes: number, secs: number): string {
  return `${(bytes / (1 << 20)).toFixed(0)} MiB in ${secs.toFixed(2)} s (${((bytes * 8) / secs / 1e9).toFixed(2)} Gbit/s)`;
}
