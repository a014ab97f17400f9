// SPDX-License-Identifier: GPL-2.0-or-later
// netns.ts - end-to-end topology: a private "host" namespace, a "router" behind it, unprivileged runs
//
// Theory of operation
//
// Tests run as root, but pasta must be exercised the way users run it: as an unprivileged user.
// Topology.start() makes, with nothing visible on the real machine:
//
//   unshare --net --mount --pid --fork --mount-proc --propagation private
//   └── "host" namespace (pid 1 is a tiny python3 init that reaps orphans and exits on stdin EOF)
//         lo up; vA 198.51.100.10/24, 2001:db8::10/64 nodad
//         default via 198.51.100.1, default via 2001:db8::1
//         /dev/net/tun: a 0666 node on a tmpfs over /dev/net (the real one is 0600)
//         /etc/resolv.conf: bind mount of a file we write (198.51.100.53, 2001:db8::53, example.org)
//         net.ipv4.ping_group_range = "0 2147483647" (pasta's ICMP proxy uses ping sockets)
//         └── "router" namespace (child `unshare -n sleep infinity`)
//               vB 198.51.100.1/24, 2001:db8::1/64; lo: 203.0.113.5/32, 2001:db8:1::5/128
//
// Commands enter with `nsenter --target <pid 1> --net --mount --pid` (and, for the router, a second
// `nsenter -n` into the router's pid), then drop to uid/gid 65534 with setpriv unless `user:
// "root"`. Because every process the topology starts lives in its pid namespace, killing pid 1
// (stop(), or the test process dying and closing pid 1's stdin) tears everything down: pasta, its
// namespaces, servers.

import { mkdtempSync, writeFileSync, chmodSync, chownSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

/** Addresses of the topology, all documentation ranges. */
export const ADDR = {
  host4: "198.51.100.10",
  host6: "2001:db8::10",
  gw4: "198.51.100.1",
  gw6: "2001:db8::1",
  remote4: "203.0.113.5",
  remote6: "2001:db8:1::5",
  dns4: "198.51.100.53",
  dns6: "2001:db8::53",
  searchDomain: "example.org",
  /** Name of the host's veth, which pasta takes as its template interface. */
  hostIf: "vA",
} as const;

/** uid and gid of "nobody", the unprivileged user pasta runs as. */
export const NOBODY_ID = 65534;

const PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Where a command runs: the user, the namespace, and how long it may take. */
export interface RunOptions {
  /** "nobody" (default) runs through setpriv as uid/gid 65534 with no capabilities. */
  user?: "nobody" | "root";
  /** "host" (default) is pasta's side; "router" holds the gateway and the remote hosts. */
  ns?: "host" | "router";
  /** Killed (SIGKILL to its process group) after this long; default 20 s for run(), 300 s for spawn(). */
  timeoutMs?: number;
  /** Bytes written to stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** Outcome of a command run to completion. */
export interface RunResult {
  /** Exit status; 128 + signal number when killed by a signal (as a shell reports it). */
  code: number;
  stdout: string;
  stderr: string;
}

/** A background process in the topology. */
export interface SpawnHandle {
  /** pid of the nsenter process in the test's pid namespace (the command is its only child). */
  readonly pid: number;
  /** Resolves with the exit status and all output once the process ends. */
  readonly result: Promise<RunResult>;
  /** True until the process has exited. */
  alive(): boolean;
  /** Output so far (stdout and stderr are collected continuously). */
  output(): { stdout: string; stderr: string };
  /** Sends a signal (default SIGTERM) to the command, then resolves when it exited. */
  kill(signal?: NodeJS.Signals | number): Promise<RunResult>;
  /** Resolves with the result, or rejects if it is still running after timeoutMs. */
  wait(timeoutMs?: number): Promise<RunResult>;
}

/** One pasta binary under test. */
export interface PastaBinary {
  /** Short label for describe.each: "dist" or "debian". */
  name: string;
  path: string;
  /** True for the 2023 upstream snapshot Debian ships; tests of newer behaviour skip it. */
  upstream2023: boolean;
}

const REPO_ROOT = resolve(import.meta.dir, "../..");
const DEBIAN_PASTA = "/usr/bin/pasta";

/** Returns the binary chosen for this run: env PASTA_BIN, else `dist/pasta` of this repository. */
export function pastaBinary(): string {
  return process.env.PASTA_BIN ?? join(REPO_ROOT, "dist/pasta");
}

function describeBinary(path: string): PastaBinary {
  const upstream2023 = resolve(path) === DEBIAN_PASTA || process.env.PASTA_UPSTREAM_2023 === "1";
  return { name: upstream2023 ? "debian" : "dist", path, upstream2023 };
}

/**
 * Returns the binaries to run the e2e suite against: only PASTA_BIN when it is set, otherwise
 * our dist/pasta and, when installed, Debian's /usr/bin/pasta (differential testing: the same
 * test runs against both).
 */
export function pastaBinaries(): PastaBinary[] {
  if (process.env.PASTA_BIN) return [describeBinary(process.env.PASTA_BIN)];
  const list = [describeBinary(join(REPO_ROOT, "dist/pasta"))];
  if (existsSync(DEBIAN_PASTA)) list.push(describeBinary(DEBIAN_PASTA));
  return list;
}

function which(tool: string): boolean {
  return Bun.which(tool, { PATH: PATH_ENV }) !== null;
}

/**
 * Returns why the e2e topology cannot run here (not root, a tool missing, no user namespaces for
 * nobody), or null when it can. Use it with describe.skipIf / test.skipIf and print the reason.
 */
export function topologyUnavailable(extraTools: string[] = []): string | null {
  if (process.getuid?.() !== 0) return "e2e tests need root to build the namespace topology";
  const tools = ["unshare", "nsenter", "setpriv", "ip", "sysctl", "mknod", "timeout", "python3", ...extraTools];
  const missing = tools.filter((t) => !which(t));
  if (missing.length) return `missing tools: ${missing.join(", ")}`;
  const probe = Bun.spawnSync(
    ["setpriv", `--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, "--clear-groups", "unshare", "-Urn", "true"],
    { stdout: "ignore", stderr: "pipe", env: { PATH: PATH_ENV } },
  );
  if (probe.exitCode !== 0) return `nobody cannot create user namespaces: ${probe.stderr.toString().trim()}`;
  return null;
}

/** Returns why a binary cannot be tested (missing or not executable), or null. */
export function binaryUnavailable(bin: PastaBinary): string | null {
  if (!existsSync(bin.path)) return `${bin.path} does not exist (run \`npm run build\`?)`;
  return null;
}

// Runs as pid 1 of the topology's pid namespace: reaps every orphan (daemonised pasta, killed
// shells) so that exited processes do not linger as zombies, and exits when the test's pipe to
// its stdin closes, which makes the kernel kill everything else in the namespace.
const INIT_PY = `
import os, sys, threading, time
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.stdout.write("READY\\n"); sys.stdout.flush()
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.05)
`;

function setupScript(dir: string): string {
  return `set -e
exec 2>&1
mount -t tmpfs -o mode=755 tmpfs /dev/net
mknod -m 666 /dev/net/tun c 10 200
mount --bind ${dir}/resolv.conf /etc/resolv.conf
ip link set lo up
unshare -n sleep infinity &
R=$!
me=$(readlink /proc/self/ns/net)
i=0
while [ "$(readlink /proc/$R/ns/net 2>/dev/null)" = "$me" ] || [ -z "$(readlink /proc/$R/ns/net 2>/dev/null)" ]; do
  i=$((i+1)); [ $i -lt 500 ] || { echo "router namespace did not appear"; exit 1; }
  sleep 0.01
done
echo $R > ${dir}/router.pid
RNS="nsenter -t $R -n"
ip link add vA type veth peer name vB
ip link set vB netns $R
ip addr add ${ADDR.host4}/24 dev vA
ip -6 addr add ${ADDR.host6}/64 dev vA nodad
ip link set vA up
$RNS ip link set lo up
$RNS ip addr add ${ADDR.gw4}/24 dev vB
$RNS ip -6 addr add ${ADDR.gw6}/64 dev vB nodad
$RNS ip addr add ${ADDR.remote4}/32 dev lo
$RNS ip -6 addr add ${ADDR.remote6}/128 dev lo
$RNS ip link set vB up
ip route add default via ${ADDR.gw4} dev vA
ip -6 route add default via ${ADDR.gw6} dev vA
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
$RNS sysctl -qw net.ipv4.ping_group_range="0 2147483647"
exec python3 -c '${INIT_PY.replace(/'/g, `'"'"'`)}'
`;
}

async function readAll(stream: ReadableStream<Uint8Array> | undefined, sink: string[]): Promise<void> {
  if (!stream) return;
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.push(decoder.decode(chunk, { stream: true }));
}

function statusOf(proc: Subprocess): number {
  if (proc.signalCode) return 128 + (require("node:os").constants.signals[proc.signalCode] ?? 0);
  return proc.exitCode ?? -1;
}

/** Returns the pids of the direct children of a process (from /proc), empty if it is gone. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The namespace topology of one test file. Start it in beforeAll, stop it in afterAll. */
export class Topology {
  /** A directory on the machine, visible inside the topology, writable by nobody. */
  readonly dir: string;
  private readonly init: Subprocess<"pipe", "pipe", "pipe">;
  /** pid (in the test's pid namespace) of the topology's pid 1. */
  readonly initPid: number;
  /** pid of the router's `sleep` as seen inside the topology's pid namespace. */
  readonly routerNsPid: number;
  private readonly handles = new Set<SpawnHandle>();
  private stopped = false;

  private constructor(dir: string, init: Subprocess<"pipe", "pipe", "pipe">, initPid: number, routerNsPid: number) {
    this.dir = dir;
    this.init = init;
    this.initPid = initPid;
    this.routerNsPid = routerNsPid;
  }

  /**
   * Builds the topology; resolves once the router answers. Throws with the setup output if any
   * step fails (and leaves nothing behind).
   * @example
   * const topo = await Topology.start();
   * const r = await topo.run(["ip", "-j", "addr"]);
   * await topo.stop();
   */
  static async start(): Promise<Topology> {
    const dir = mkdtempSync(join(tmpdir(), "pasta-e2e-"));
    chmodSync(dir, 0o755);
    chownSync(dir, NOBODY_ID, NOBODY_ID);
    writeFileSync(
      join(dir, "resolv.conf"),
      `nameserver ${ADDR.dns4}\nnameserver ${ADDR.dns6}\nsearch ${ADDR.searchDomain}\n`,
    );
    chmodSync(join(dir, "resolv.conf"), 0o644);
    const init = Bun.spawn(
      [
        "unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
        "--kill-child=SIGKILL", "sh", "-c", setupScript(dir),
      ],
      { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { PATH: PATH_ENV } },
    );
    const out: string[] = [];
    const reader = init.stdout.getReader();
    const decoder = new TextDecoder();
    const deadline = Date.now() + 10_000;
    while (!out.join("").includes("READY\n")) {
      const next = await Promise.race([
        reader.read(),
        Bun.sleep(Math.max(0, deadline - Date.now())).then(() => "timeout" as const),
      ]);
      if (next === "timeout" || next.done) {
        init.kill("SIGKILL");
        await init.exited;
        rmSync(dir, { recursive: true, force: true });
        const err = await new Response(init.stderr).text();
        throw new Error(`topology setup failed (${next === "timeout" ? "timeout" : "exited"}): ${out.join("")}${err}`);
      }
      out.push(decoder.decode(next.value));
    }
    reader.releaseLock();
    // Drain the rest so the pipe never fills.
    void readAll(init.stdout, []);
    void readAll(init.stderr, []);
    const nsInit = childrenOf(init.pid)[0];
    if (!nsInit) throw new Error("topology: cannot find pid 1 of the new pid namespace");
    const routerNsPid = Number(readFileSync(join(dir, "router.pid"), "utf8").trim());
    const topo = new Topology(dir, init, nsInit, routerNsPid);
    const ping = await topo.run(["ping", "-c1", "-W2", ADDR.gw4], { user: "root" });
    if (ping.code !== 0) {
      await topo.stop();
      throw new Error(`topology: router ${ADDR.gw4} does not answer: ${ping.stdout}${ping.stderr}`);
    }
    return topo;
  }

  private argv(argv: string[], opts: RunOptions, defaultTimeoutMs: number): string[] {
    const enter = ["nsenter", "--target", String(this.initPid), "--net", "--mount", "--pid", "--"];
    const router = opts.ns === "router" ? ["nsenter", "--target", String(this.routerNsPid), "--net", "--"] : [];
    const drop =
      (opts.user ?? "nobody") === "nobody"
        ? ["setpriv", `--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, "--clear-groups", "--inh-caps=-all"]
        : [];
    const timeoutS = ((opts.timeoutMs ?? defaultTimeoutMs) / 1000).toFixed(3);
    return [...enter, ...router, "timeout", "-s", "KILL", timeoutS, ...drop, ...argv];
  }

  private env(opts: RunOptions): Record<string, string> {
    return { PATH: PATH_ENV, HOME: this.dir, TMPDIR: this.dir, LANG: "C", ...opts.env };
  }

  /** Runs a command to completion and returns its status and output. Never throws on failure. */
  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.start(argv, opts, 20_000).result;
  }

  /** Starts a command in the background; stop() kills whatever is still running. */
  spawn(argv: string[], opts: RunOptions = {}): SpawnHandle {
    return this.start(argv, opts, 300_000);
  }

  private start(argv: string[], opts: RunOptions, defaultTimeoutMs: number): SpawnHandle {
    if (this.stopped) throw new Error("topology already stopped");
    const proc = Bun.spawn(this.argv(argv, opts, defaultTimeoutMs), {
      stdin: opts.stdin === undefined ? "ignore" : new Blob([opts.stdin]),
      stdout: "pipe",
      stderr: "pipe",
      env: this.env(opts),
    });
    const stdout: string[] = [];
    const stderr: string[] = [];
    let done = false;
    const result = (async (): Promise<RunResult> => {
      const pipes = Promise.all([readAll(proc.stdout, stdout), readAll(proc.stderr, stderr)]);
      await proc.exited;
      // A daemon that forked off may keep our pipes open: give them a moment, then stop waiting.
      await Promise.race([pipes, Bun.sleep(500)]);
      done = true;
      return { code: statusOf(proc), stdout: stdout.join(""), stderr: stderr.join("") };
    })();
    const handles = this.handles;
    const handle: SpawnHandle = {
      pid: proc.pid,
      result,
      alive: () => !done && proc.exitCode === null && proc.signalCode === null,
      output: () => ({ stdout: stdout.join(""), stderr: stderr.join("") }),
      async kill(signal: NodeJS.Signals | number = "SIGTERM") {
        // nsenter --pid forks: the command (under `timeout`) is its child. Signal the whole chain.
        const chain: number[] = [];
        for (let p = childrenOf(proc.pid)[0]; p; p = childrenOf(p)[0]) chain.push(p);
        for (const p of chain.reverse()) {
          try {
            process.kill(p, signal);
          } catch {}
        }
        const r = await Promise.race([result, Bun.sleep(3000).then(() => null)]);
        if (r) return r;
        for (const p of [...chain, proc.pid]) {
          try {
            process.kill(p, "SIGKILL");
          } catch {}
        }
        return result;
      },
      async wait(timeoutMs = 20_000) {
        const r = await Promise.race([result, Bun.sleep(timeoutMs).then(() => null)]);
        if (!r) throw new Error(`still running after ${timeoutMs} ms: ${argv.join(" ")}\n${handle.output().stderr}`);
        return r;
      },
    };
    handles.add(handle);
    void result.then(() => handles.delete(handle));
    return handle;
  }

  /** Writes a file into the shared directory (readable by nobody) and returns its path. */
  writeFile(name: string, content: string | Uint8Array, mode = 0o644): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  }

  /**
   * Starts a socat listener (TCP or UDP, v4 or v6) in a namespace that answers each client with
   * `reply` (then closes, for TCP); resolves once it listens.
   */
  async listen(opts: { ns: "host" | "router"; proto: "tcp" | "udp"; port: number; v6?: boolean; reply: string }): Promise<SpawnHandle> {
    const family = opts.v6 ? "6" : "4";
    const addr = `${opts.proto.toUpperCase()}${family}-LISTEN:${opts.port},reuseaddr,fork`;
    const h = this.spawn(["socat", addr, `SYSTEM:echo ${opts.reply}`], { ns: opts.ns, user: "root", timeoutMs: 600_000 });
    const listening = opts.proto === "tcp" ? "ss -Hltn" : "ss -Hlun";
    for (let i = 0; i < 100; i++) {
      const r = await this.run(["sh", "-c", listening], { ns: opts.ns, user: "root" });
      if (r.stdout.includes(`:${opts.port} `)) return h;
      await Bun.sleep(20);
    }
    throw new Error(`listener on port ${opts.port} did not start: ${h.output().stderr}`);
  }

  /**
   * Starts `unshare -Urn sleep infinity` as nobody, the way a container runtime prepares a
   * namespace for `pasta PID`; resolves once its user and network namespaces exist. `pid` is as
   * seen inside the topology (what pasta and nsenter there take). The holder is killed after
   * `timeoutMs` (spawn()'s default, 300 s): a forwarder attached to it then sees its namespace go.
   */
  async holdNamespace(timeoutMs?: number): Promise<{ pid: number; handle: SpawnHandle; enter: (argv: string[]) => string[] }> {
    const handle = this.spawn(["unshare", "-Urn", "sh", "-c", "echo $$; exec sleep infinity"], timeoutMs === undefined ? {} : { timeoutMs });
    for (let i = 0; i < 250 && !handle.output().stdout.includes("\n"); i++) {
      if (!handle.alive()) break;
      await Bun.sleep(20);
    }
    const pid = Number(handle.output().stdout.trim());
    if (!pid) throw new Error(`namespace holder did not start: ${handle.output().stderr}`);
    // Joining the user namespace as its owner gives uid 0 there; setgroups is denied in it, so
    // nsenter must keep the credentials rather than set them.
    const enter = (argv: string[]) => ["nsenter", "-t", String(pid), "-U", "-n", "--preserve-credentials", "--", ...argv];
    return { pid, handle, enter };
  }

  /** Kills everything in the topology and removes its directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.init.stdin.end();
    const ended = await Promise.race([this.init.exited.then(() => true), Bun.sleep(2000).then(() => false)]);
    if (!ended) {
      try {
        process.kill(this.initPid, "SIGKILL");
      } catch {}
      this.init.kill("SIGKILL");
      await this.init.exited;
    }
    // The nsenter processes in our pid namespace exit once their children (now killed) are gone.
    await Promise.all([...this.handles].map((h) => h.wait(3000).catch(() => h.kill("SIGKILL"))));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Returns why a suite for this binary must be skipped (no root, a tool missing, the binary
 * missing), or null. The reason is printed once, so a skipped run says why.
 */
export function suiteSkipReason(bin: PastaBinary, extraTools: string[] = []): string | null {
  const reason = topologyUnavailable(extraTools) ?? binaryUnavailable(bin);
  if (reason) console.warn(`[e2e] skipping ${bin.name} (${bin.path}): ${reason}`);
  return reason;
}

/**
 * Runs `probe` every 100 ms until `ok` accepts its result; returns the last result either way,
 * so the caller's assertion shows what was seen.
 */
export async function waitUntil(
  probe: () => Promise<RunResult>,
  ok: (r: RunResult) => boolean,
  timeoutMs = 5000,
): Promise<RunResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await probe();
    if (ok(r) || Date.now() > deadline) return r;
    await Bun.sleep(100);
  }
}

/** Formats a failed run for an assertion message: the command's status and both streams. */
export function explain(what: string, r: RunResult): string {
  return `${what}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
