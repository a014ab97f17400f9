// SPDX-License-Identifier: GPL-2.0-or-later
// splice_udp.test.ts - UDP between the host's loopback and the namespace, spliced: -u, -U, -U auto, batches

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ADDR, type PastaBinary, type SpawnHandle, Topology, explain, pastaBinaries, suiteSkipReason, waitUntil } from "../../harness/netns.ts";

// Echo server: answers "?" with the sender's address and port as it saw them, and echoes
// anything else unchanged. Binds [::] dual-stack unless given an address.
const UDP_SERVER_PY = `
import socket, sys
port = int(sys.argv[1])
addr = sys.argv[2] if len(sys.argv) > 2 else "::"
fam = socket.AF_INET if "." in addr else socket.AF_INET6
s = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET6 and addr == "::":
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((addr, port))
print("listening", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    if data == b"?":
        ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        s.sendto(("%s %d" % (ip, peer[1])).encode(), peer)
    else:
        s.sendto(data, peer)
`;

// "whoami HOST PORT SRCPORT": asks the server who we are, from SRCPORT, retrying for 5 s.
// "bulk HOST PORT N SIZE": N datagrams of SIZE bytes, at most 32 in flight, each echo checked.
const UDP_CLIENT_PY = `
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
if mode == "whoami":
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", int(sys.argv[4])))
    s.settimeout(0.3)
    t0 = time.monotonic()
    while True:
        try:
            s.sendto(b"?", (host, port))
            print(s.recvfrom(100)[0].decode())
            sys.exit(0)
        except OSError as e:
            if time.monotonic() - t0 > 5:
                print("no answer:", repr(e))
                sys.exit(1)
else:
    n, size = int(sys.argv[4]), int(sys.argv[5])
    s.connect((host, port))
    s.settimeout(5)
    sent = got = bad = 0
    while got < n:
        while sent < n and sent - got < 32:
            s.send(sent.to_bytes(4, "big") * (size // 4))
            sent += 1
        d = s.recv(65535)
        if len(d) != size or d[:4] != got.to_bytes(4, "big"):
            bad += 1
        got += 1
    print("echoed", got, "bad", bad)
`;

describe.each(pastaBinaries().map((b) => [b.name, b] as const))("UDP splice (%s)", (_name, bin: PastaBinary) => {
  const skip = suiteSkipReason(bin, ["ss"]);
  let topo: Topology;

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
  });
  afterAll(async () => topo?.stop());

  async function pastaWith(args: string[]): Promise<{ pasta: SpawnHandle; enter: (argv: string[]) => string[]; holder: SpawnHandle }> {
    const held = await topo.holdNamespace();
    const pasta = topo.spawn([bin.path, "-f", "--config-net", ...args, String(held.pid)]);
    const addr = await waitUntil(
      () => topo.run(held.enter(["ip", "-j", "addr", "show", "dev", ADDR.hostIf])),
      (x) => x.code === 0 && x.stdout.includes(`"${ADDR.host4}"`),
    );
    expect(addr.code, explain("namespace address", addr)).toBe(0);
    return { pasta, enter: held.enter, holder: held.handle };
  }

  /** Starts the echo server (in the namespace through `enter`, else on the host) and waits for it. */
  async function udpServer(port: number, enter?: (argv: string[]) => string[], addr?: string): Promise<SpawnHandle> {
    const path = topo.writeFile("udp_server.py", UDP_SERVER_PY);
    const argv = ["python3", path, String(port), ...(addr ? [addr] : [])];
    const h = enter ? topo.spawn(enter(argv), { timeoutMs: 600_000 }) : topo.spawn(argv, { user: "root", timeoutMs: 600_000 });
    for (let i = 0; i < 250 && !h.output().stdout.includes("listening"); i++) {
      if (!h.alive()) break;
      await Bun.sleep(20);
    }
    expect(h.output().stdout, `UDP server did not start: ${h.output().stderr}`).toContain("listening");
    return h;
  }

  function client(args: string[], enter?: (argv: string[]) => string[]) {
    const path = topo.writeFile("udp_client.py", UDP_CLIENT_PY);
    const argv = ["python3", path, ...args];
    return topo.run(enter ? enter(argv) : argv, { timeoutMs: 60_000 });
  }

  async function stopAll(...handles: (SpawnHandle | undefined)[]): Promise<void> {
    for (const h of handles) await h?.kill("SIGKILL");
  }

  function pastaLog(p: SpawnHandle): string {
    return explain("\npasta", { code: -1, ...p.output() });
  }

  test.skipIf(!!skip)("-u: datagrams from the host's 127.0.0.1 and ::1 are spliced, with their source port kept", async () => {
    const { pasta, enter, holder } = await pastaWith(["-t", "none", "-u", "10101", "-T", "none", "-U", "none"]);
    const server = await udpServer(10101, enter);
    try {
      for (const [i, addr] of ["127.0.0.1", "::1"].entries()) {
        const v6 = addr.includes(":");
        const r = await client(["whoami", addr, "10101", String(40001 + i)]);
        expect(r.code, explain(`whoami over ${addr}`, r) + pastaLog(pasta)).toBe(0);
        // Newest upstream sends to the namespace's external address; 2023 to its loopback.
        const peer = bin.upstream2023 ? addr : v6 ? ADDR.host6 : ADDR.host4;
        expect(r.stdout.trim()).toBe(`${peer} ${40001 + i}`);
      }
    } finally {
      await stopAll(server, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip)("-u: 5000 datagrams of 1400 bytes, 32 in flight, all echoed back in order over both loopbacks", async () => {
    const { pasta, enter, holder } = await pastaWith(["-t", "none", "-u", "10102", "-T", "none", "-U", "none"]);
    const server = await udpServer(10102, enter);
    try {
      for (const addr of ["127.0.0.1", "::1"]) {
        const r = await client(["bulk", addr, "10102", "5000", "1400"]);
        expect(r.code, explain(`bulk over ${addr}`, r) + pastaLog(pasta)).toBe(0);
        expect(r.stdout.trim()).toBe("echoed 5000 bad 0");
      }
    } finally {
      await stopAll(server, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip)("-U: the namespace's 127.0.0.1 and ::1 reach a host loopback UDP service, source port kept", async () => {
    const server = await udpServer(10103);
    const { pasta, enter, holder } = await pastaWith(["-t", "none", "-u", "none", "-T", "none", "-U", "10103"]);
    try {
      for (const [i, addr] of ["127.0.0.1", "::1"].entries()) {
        const r = await client(["whoami", addr, "10103", String(40011 + i)], enter);
        expect(r.code, explain(`whoami from the namespace over ${addr}`, r) + pastaLog(pasta)).toBe(0);
        expect(r.stdout.trim()).toBe(`${addr} ${40011 + i}`);
      }
      const bulk = await client(["bulk", "127.0.0.1", "10103", "2000", "1400"], enter);
      expect(bulk.stdout.trim(), explain("bulk from the namespace", bulk)).toBe("echoed 2000 bad 0");
    } finally {
      await stopAll(server, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("-U auto: a host UDP service started after pasta is reachable from the namespace within 2 s", async () => {
    // Upstream 2023 scanned UDP ports only at start.
    const { pasta, enter, holder } = await pastaWith(["-t", "none", "-u", "none", "-U", "auto"]);
    let server: SpawnHandle | undefined;
    try {
      server = await udpServer(10104, undefined, "127.0.0.1");
      const t0 = performance.now();
      const r = await client(["whoami", "127.0.0.1", "10104", "40021"], enter);
      expect(r.code, explain("whoami from the namespace", r) + pastaLog(pasta)).toBe(0);
      expect(performance.now() - t0).toBeLessThan(2500); // one scan, plus python start-up
      expect(r.stdout.trim()).toBe("127.0.0.1 40021");
    } finally {
      await stopAll(server, pasta, holder);
    }
  }, 60_000);

  test.skipIf(!!skip || bin.upstream2023)("--no-splice: loopback datagrams go through the tap (the namespace sees the gateway)", async () => {
    const { pasta, enter, holder } = await pastaWith(["--no-splice", "-t", "none", "-u", "10105", "-T", "none", "-U", "none"]);
    const server = await udpServer(10105, enter);
    try {
      const r = await client(["whoami", "127.0.0.1", "10105", "40031"]);
      expect(r.code, explain("whoami", r) + pastaLog(pasta)).toBe(0);
      expect(r.stdout.trim()).toBe(`${ADDR.gw4} 40031`);
    } finally {
      await stopAll(server, pasta, holder);
    }
  }, 60_000);
});
