// SPDX-License-Identifier: GPL-2.0-or-later
// splice.test.ts - TCP between the host's loopback and the namespace, spliced: bulk data, many connections, half-close, reset

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  ADDR, type PastaBinary, type RunResult, type SpawnHandle, Topology, explain, pastaBinaries, suiteSkipReason, topologyUnavailable, waitUntil,
} from "../../harness/netns.ts";
import { type Place, probe } from "../../harness/fwd.ts";

/** Bytes sent each way in the bulk tests. */
const BULK_BYTES = 256 * 1024 * 1024;

// One tool for both ends. A server accepts `count` connections one after the other; a client
// makes one. `source` sends SIZE pseudo-random bytes (seeded, so a failure can be replayed) and
// closes its sending side; `sink` reads to the end. Each end appends one JSON line to OUT (or
// prints it, for "-"): bytes moved, sha256, the peer address it saw, and the time taken.
const XFER_PY = `
import hashlib, json, random, socket, sys, time
role, mode, host, port, size, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
count = int(sys.argv[7]) if len(sys.argv) > 7 else 1
CHUNK = 1 << 20

def run(conn, peer):
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    if mode == "source":
        rnd = random.Random(42)
        while n < size:
            b = rnd.randbytes(min(CHUNK, size - n))
            conn.sendall(b)
            h.update(b)
            n += len(b)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(CHUNK):
            pass
    else:
        while True:
            b = conn.recv(CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
    conn.close()
    line = json.dumps({"bytes": n, "sha256": h.hexdigest(), "peer": peer, "ms": int((time.monotonic() - t0) * 1000)})
    if out == "-":
        print(line, flush=True)
    else:
        with open(out, "a") as f:
            f.write(line + "\\n")

if role == "server":
    ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((host, port))
    ls.listen(8)
    print("listening", flush=True)
    for _ in range(count):
        c, a = ls.accept()
        peer = a[0][7:] if a[0].startswith("::ffff:") else a[0]
        run(c, peer)
else:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect((host, port))
    run(c, host)
`;

// Echo server for many connections at once (selectors, one thread), and a client that opens N
// connections, keeps all of them open, sends each its own 64 KiB, and checks every echo.
const ECHO_SERVER_PY = `
import selectors, socket, sys
port = int(sys.argv[1])
sel = selectors.DefaultSelector()
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
ls.bind(("::", port))
ls.listen(512)
ls.setblocking(False)
sel.register(ls, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s is ls:
            c, _ = ls.accept()
            c.setblocking(True)
            sel.register(c, selectors.EVENT_READ)
            continue
        try:
            b = s.recv(65536)
        except OSError:
            b = b""
        if not b:
            sel.unregister(s)
            s.close()
        else:
            s.sendall(b)
`;

const ECHO_CLIENT_PY = `
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
conns = []
for i in range(n):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.settimeout(20)
    c.connect((host, port))
    conns.append(c)
for i, c in enumerate(conns):
    c.sendall(bytes([i % 251]) * 65536)
bad = 0
for i, c in enumerate(conns):
    got = b""
    while len(got) < 65536:
        b = c.recv(65536)
        if not b:
            break
        got += b
    if got != bytes([i % 251]) * 65536:
        bad += 1
print("open", len(conns), "bad", bad, flush=True)
for c in conns:
    c.close()
`;

// The start of the one-connection-at-a-time servers below: a dual-stack listener on port argv[1].
const LISTEN_PY = `
ls = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
ls.bind(("::", int(sys.argv[1])))
ls.listen(8)
print("listening", flush=True)`;

// A namespace server that resets every connection it accepts (SO_LINGER 0, then close).
const RST_SERVER_PY = `
import socket, struct, sys
${LISTEN_PY}
while True:
    c, _ = ls.accept()
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
`;

const RST_CLIENT_PY = `
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
c = socket.socket(fam, socket.SOCK_STREAM)
c.settimeout(5)
# The reset may overtake the client anywhere: in connect() on loopback, in send() or in recv().
try:
    c.connect((host, port))
    c.sendall(b"x")
    b = c.recv(100)
    print("eof" if b == b"" else "data")
except (ConnectionResetError, BrokenPipeError):
    print("reset")
except socket.timeout:
    print("timeout")
`;

// A namespace server that accepts one connection and never reads from it.
const STALL_SERVER_PY = `
import socket, sys, time
${LISTEN_PY}
c, _ = ls.accept()
time.sleep(600)
`;

// A host client that writes as much as the connection takes for SECONDS, prints how much, and
// keeps the connection open until killed.
const FLOOD_CLIENT_PY = `
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = socket.create_connection((host, port))
c.setblocking(False)
sent, buf, end = 0, bytes(65536), time.monotonic() + seconds
while time.monotonic() < end:
    try:
        sent += c.send(buf)
    except BlockingIOError:
        time.sleep(0.01)
print("sent", sent, flush=True)
time.sleep(600)
`;

// Echo server for one connection at a time, and a client that makes N 1-byte round trips.
const PING_SERVER_PY = `
import socket, sys
${LISTEN_PY}
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b:
            break
        c.sendall(b)
    c.close()
`;

const PING_CLIENT_PY = `
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ok = 0
for i in range(n):
    c.sendall(b"p")
    if c.recv(1) == b"p":
        ok += 1
c.close()
print("ok", ok, flush=True)
`;

interface XferRecord {
  bytes: number;
  sha256: string;
  peer: string;
  ms: number;
}

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("TCP splice (%s)", (_name, bin: PastaBinary) => {
  const skip = suiteSkipReason(bin, ["ss"]);
  let topo: Topology;
  const host: Place = { where: "host" };

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  /** Starts pasta with `args` on a fresh namespace; resolves once the host listens on `port`. */
  async function pastaWith(args: string[], port: number): Promise<{ pasta: SpawnHandle; ns: Place & { where: "ns" }; holder: SpawnHandle }> {
    const held = await topo.holdNamespace();
    const pasta = topo.spawn([bin.path, "-f", "--config-net", ...args, String(held.pid)]);
    const r = await waitUntil(() => topo.run(["ss", "-Hltn"], { user: "root" }), (x) => x.stdout.includes(`:${port} `));
    expect(r.stdout, `host listener on ${port}${explain("\npasta", { code: -1, ...pasta.output() })}`).toContain(`:${port} `);
    if (!args.includes("--splice-only")) {
      const addr = await waitUntil(
        () => topo.run(held.enter(["ip", "-j", "addr", "show", "dev", ADDR.hostIf])),
        (x) => x.code === 0 && x.stdout.includes(`"${ADDR.host4}"`),
      );
      expect(addr.code, explain("namespace address", addr)).toBe(0);
    }
    return { pasta, ns: { where: "ns", enter: held.enter }, holder: held.handle };
  }

  /** Starts a python server at `ns` and resolves once it printed "listening". */
  async function pyServer(ns: Place & { where: "ns" }, name: string, script: string, args: string[]): Promise<SpawnHandle> {
    const path = topo.writeFile(name, script);
    const h = topo.spawn(ns.enter(["python3", path, ...args]), { timeoutMs: 600_000 });
    for (let i = 0; i < 250 && !h.output().stdout.includes("listening"); i++) {
      if (!h.alive()) break;
      await Bun.sleep(20);
    }
    expect(h.output().stdout, `${name} did not start: ${h.output().stderr}`).toContain("listening");
    return h;
  }

  function records(r: RunResult | string): XferRecord[] {
    const text = typeof r === "string" ? r : r.stdout;
    return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as XferRecord);
  }

  async function readOut(name: string, lines: number): Promise<XferRecord[]> {
    const path = `${topo.dir}/${name}`;
    for (let i = 0; i < 500; i++) {
      const f = Bun.file(path);
      if (await f.exists()) {
        const recs = records(await f.text());
        if (recs.length >= lines) return recs;
      }
      await Bun.sleep(20);
    }
    return (await Bun.file(path).exists()) ? records(await Bun.file(path).text()) : [];
  }

  async function stopAll(...handles: (SpawnHandle | undefined)[]): Promise<void> {
    for (const h of handles) await h?.kill("SIGKILL");
  }

  /** The address a spliced connection comes from inside the namespace. */
  function splicedPeer(v6: boolean): string {
    // Newest upstream connects to the namespace's external address (the kernel then uses it as
    // the source too); upstream 2023 connected to the namespace's loopback.
    if (bin.upstream2023) return v6 ? "::1" : "127.0.0.1";
    return v6 ? ADDR.host6 : ADDR.host4;
  }

  test.skipIf(!!skip)("256 MiB each way over 127.0.0.1 and ::1 arrive intact (sha256), through the splice path", async () => {
    const { pasta, ns, holder } = await pastaWith(["-t", "10001,10002", "-u", "none", "-T", "none", "-U", "none"], 10002);
    const up = topo.writeFile("up.jsonl", "", 0o666);
    const down = topo.writeFile("down.jsonl", "", 0o666);
    const xfer = topo.writeFile("xfer.py", XFER_PY);
    const sink = await pyServer(ns, "sink.py", XFER_PY, ["server", "sink", "::", "10001", "0", up, "2"]);
    const source = await pyServer(ns, "source.py", XFER_PY, ["server", "source", "::", "10002", String(BULK_BYTES), down, "2"]);
    try {
      for (const [i, addr] of ["127.0.0.1", "::1"].entries()) {
        const v6 = addr.includes(":");
        const sent = await topo.run(["python3", xfer, "client", "source", addr, "10001", String(BULK_BYTES), "-"], { timeoutMs: 120_000 });
        expect(sent.code, explain(`upload over ${addr}`, sent) + explain("\npasta", { code: -1, ...pasta.output() })).toBe(0);
        const got = (await readOut("up.jsonl", i + 1))[i];
        expect(got, `namespace sink record for ${addr}`).toBeDefined();
        expect(got!.bytes).toBe(BULK_BYTES);
        expect(got!.sha256).toBe(records(sent)[0]!.sha256);
        expect(got!.peer).toBe(splicedPeer(v6));

        const recv = await topo.run(["python3", xfer, "client", "sink", addr, "10002", "0", "-"], { timeoutMs: 120_000 });
        expect(recv.code, explain(`download over ${addr}`, recv)).toBe(0);
        const origin = (await readOut("down.jsonl", i + 1))[i];
        expect(origin, `namespace source record for ${addr}`).toBeDefined();
        expect(records(recv)[0]!.bytes).toBe(BULK_BYTES);
        expect(records(recv)[0]!.sha256).toBe(origin!.sha256);
        expect(origin!.peer).toBe(splicedPeer(v6));
      }
    } finally {
      await stopAll(sink, source, pasta, holder);
    }
  }, 300_000);

  test.skipIf(!!skip)("200 connections spliced at the same time each echo their own 64 KiB, and are all closed afterwards", async () => {
    const { pasta, ns, holder } = await pastaWith(["-t", "10003", "-u", "none", "-T", "none", "-U", "none"], 10003);
    const echo = await pyServer(ns, "echo.py", ECHO_SERVER_PY, ["10003"]);
    const client = topo.writeFile("echo_client.py", ECHO_CLIENT_PY);
    try {
      for (const addr of ["127.0.0.1", "::1"]) {
        const r = await topo.run(["python3", client, addr, "10003", "200"], { timeoutMs: 120_000 });
        expect(r.code, explain(`200 connections over ${addr}`, r) + explain("\npasta", { code: -1, ...pasta.output() })).toBe(0);
        expect(r.stdout.trim()).toBe("open 200 bad 0");
      }
      // Every connection was closed by the client: nothing may stay established in the namespace.
      const left = await waitUntil(
        () => topo.run(ns.enter(["sh", "-c", "ss -Htn state established '( sport = :10003 )' | wc -l"])),
        (x) => x.stdout.trim() === "0",
        5000,
      );
      expect(left.stdout.trim()).toBe("0");
    } finally {
      await stopAll(echo, pasta, holder);
    }
  }, 120_000);

  test.skipIf(!!skip)("a reset from the namespace server reaches the host client as a reset", async () => {
    const { pasta, ns, holder } = await pastaWith(["-t", "10004", "-u", "none", "-T", "none", "-U", "none"], 10004);
    const rst = await pyServer(ns, "rst.py", RST_SERVER_PY, ["10004"]);
    const client = topo.writeFile("rst_client.py", RST_CLIENT_PY);
    try {
      // Newest upstream resets both sides (SO_LINGER 0); upstream 2023 closed the host side cleanly.
      const expected = bin.upstream2023 ? "eof" : "reset";
      for (const addr of ["127.0.0.1", "::1"]) {
        const r = await topo.run(["python3", client, addr, "10004"]);
        expect(r.stdout.trim(), explain(`client over ${addr}`, r)).toBe(expected);
      }
    } finally {
      await stopAll(rst, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip)("a forwarded port with nothing listening in the namespace resets the host connection", async () => {
    const { pasta, holder } = await pastaWith(["-t", "10005", "-u", "none", "-T", "none", "-U", "none"], 10005);
    const client = topo.writeFile("rst_client.py", RST_CLIENT_PY);
    try {
      const r = await topo.run(["python3", client, "127.0.0.1", "10005"]);
      expect(["reset", "eof"], explain("client", r)).toContain(r.stdout.trim());
    } finally {
      await stopAll(pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("--no-splice carries host loopback connections through the tap (the namespace sees the gateway)", async () => {
    const { pasta, ns, holder } = await pastaWith(["--no-splice", "-t", "10006", "-u", "none", "-T", "none", "-U", "none"], 10006);
    const out = topo.writeFile("nosplice.jsonl", "", 0o666);
    const xfer = topo.writeFile("xfer.py", XFER_PY);
    const sink = await pyServer(ns, "sink.py", XFER_PY, ["server", "sink", "::", "10006", "0", out, "2"]);
    try {
      for (const [i, addr] of ["127.0.0.1", "::1"].entries()) {
        const sent = await topo.run(["python3", xfer, "client", "source", addr, "10006", String(8 << 20), "-"], { timeoutMs: 60_000 });
        expect(sent.code, explain(`upload over ${addr}`, sent)).toBe(0);
        const got = (await readOut("nosplice.jsonl", i + 1))[i];
        expect(got?.sha256).toBe(records(sent)[0]!.sha256);
        expect(got?.peer).toBe(addr.includes(":") ? ADDR.gw6 : ADDR.gw4);
      }
    } finally {
      await stopAll(sink, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("--host-lo-to-ns-lo splices to the namespace's loopback, reaching a server bound there only", async () => {
    const { pasta, ns, holder } = await pastaWith(["--host-lo-to-ns-lo", "-t", "10007", "-u", "none", "-T", "none", "-U", "none"], 10007);
    const out = topo.writeFile("lo.jsonl", "", 0o666);
    const xfer = topo.writeFile("xfer.py", XFER_PY);
    const sink = await pyServer(ns, "sink.py", XFER_PY, ["server", "sink", "::1", "10007", "0", out, "1"]);
    try {
      const sent = await topo.run(["python3", xfer, "client", "source", "::1", "10007", String(1 << 20), "-"]);
      expect(sent.code, explain("upload over ::1", sent)).toBe(0);
      const got = (await readOut("lo.jsonl", 1))[0];
      expect(got?.sha256).toBe(records(sent)[0]!.sha256);
      expect(got?.peer).toBe("::1");
    } finally {
      await stopAll(sink, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("a namespace server that stops reading leaves little unsent data in pasta's socket (TCP_NOTSENT_LOWAT)", async () => {
    const { pasta, ns, holder } = await pastaWith(["-t", "10009", "-u", "none", "-T", "none", "-U", "none"], 10009);
    const stall = await pyServer(ns, "stall.py", STALL_SERVER_PY, ["10009"]);
    const flood = topo.spawn(["python3", topo.writeFile("flood.py", FLOOD_CLIENT_PY), "127.0.0.1", "10009", "2"], { timeoutMs: 60_000 });
    try {
      for (let i = 0; i < 100 && !flood.output().stdout.includes("sent"); i++) await Bun.sleep(100);
      const sent = Number(/sent (\d+)/.exec(flood.output().stdout)?.[1] ?? 0);
      // Far more than any socket takes: the rest waits in the host client's socket and the pipe.
      expect(sent, explain("\npasta", { code: -1, ...pasta.output() })).toBeGreaterThan(4 << 20);
      // Data went through pasta: the server's receive queue is full of it.
      const server = await topo.run(ns.enter(["ss", "-Htn", "state", "established", "( sport = :10009 )"]));
      expect(Number(server.stdout.trim().split(/\s+/)[0]), explain("ss", server)).toBeGreaterThan(64 * 1024);
      // pasta's socket in the namespace is the one towards port 10009.
      const ss = await topo.run(ns.enter(["ss", "-Htni", "state", "established", "( dport = :10009 )"]));
      expect(ss.stdout, explain("ss", ss)).toContain("cwnd");
      const notsent = Number(/notsent:(\d+)/.exec(ss.stdout)?.[1] ?? 0);
      // Without the option the kernel queues up to the send buffer (3.6 MiB measured here), which
      // the namespace application then transmits in its own context as it reads; with it, about
      // NOTSENT_LOWAT_BYTES and one more segment.
      expect(notsent, ss.stdout).toBeLessThan(256 * 1024);
    } finally {
      await stopAll(flood, stall, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || topologyUnavailable(["strace"]) !== null)("a 1-byte request and its answer take four splice() calls (no read that only finds EAGAIN)", async () => {
    const held = await topo.holdNamespace();
    const out = `${topo.dir}/splice-strace.txt`;
    const args = ["-f", "--config-net", "-t", "10010", "-u", "none", "-T", "none", "-U", "none", String(held.pid)];
    const pasta = topo.spawn(["strace", "-f", "-c", "-o", out, "-e", "trace=splice", bin.path, ...args]);
    const ns: Place & { where: "ns" } = { where: "ns", enter: held.enter };
    try {
      await waitUntil(() => topo.run(["ss", "-Hltn"], { user: "root" }), (x) => x.stdout.includes(":10010 "));
      const ping = await pyServer(ns, "ping.py", PING_SERVER_PY, ["10010"]);
      const N = 500;
      const r = await topo.run(["python3", topo.writeFile("ping_client.py", PING_CLIENT_PY), "127.0.0.1", "10010", String(N)], { timeoutMs: 60_000 });
      expect(r.stdout.trim(), explain("ping client", r)).toBe(`ok ${N}`);
      await stopAll(ping);
      await pasta.kill("SIGTERM");
      const summary = await Bun.file(out).text();
      const calls = Number(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)(?:\s+\d+)?\s+splice$/m.exec(summary)?.[1] ?? NaN);
      // Per round trip: socket to pipe and pipe to socket, each way. A read that comes back
      // EAGAIN after each message would make it six. The connection's start and end add a few.
      expect(calls / N, summary).toBeGreaterThanOrEqual(4);
      expect(calls / N, summary).toBeLessThan(4.2);
    } finally {
      await stopAll(pasta, held.handle);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("--splice-only: no tap in the namespace; loopback clients are spliced, others refused", async () => {
    const { pasta, ns, holder } = await pastaWith(["--splice-only", "-t", "10008", "-u", "none", "-T", "none", "-U", "none"], 10008);
    const out = topo.writeFile("only.jsonl", "", 0o666);
    const xfer = topo.writeFile("xfer.py", XFER_PY);
    const sink = await pyServer(ns, "sink.py", XFER_PY, ["server", "sink", "::", "10008", "0", out, "1"]);
    try {
      const links = await topo.run(ns.enter(["ip", "-j", "link"]));
      expect(JSON.parse(links.stdout).map((l: { ifname: string }) => l.ifname)).toEqual(["lo"]);
      const sent = await topo.run(["python3", xfer, "client", "source", "127.0.0.1", "10008", String(1 << 20), "-"]);
      expect(sent.code, explain("upload over 127.0.0.1", sent) + explain("\npasta", { code: -1, ...pasta.output() })).toBe(0);
      const got = (await readOut("only.jsonl", 1))[0];
      expect(got?.sha256).toBe(records(sent)[0]!.sha256);
      expect(got?.peer).toBe("127.0.0.1");
      // From the router, the host's port is reached from a non-loopback address: not spliceable.
      const remote = await probe(topo, { where: "router" }, "up", "tcp", ADDR.host4, 10008, 500);
      expect(remote.code).not.toBe(0);
    } finally {
      await stopAll(sink, pasta, holder);
    }
  }, 60_000);
});
