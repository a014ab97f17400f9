// SPDX-License-Identifier: GPL-2.0-or-later
// daemon.test.ts - how passt runs: in the background by default, -f, -1, the default socket path, -F
//
// passt runs as nobody in the e2e topology (tests/harness/netns.ts). "Serving" is checked as in
// socket.test.ts: a DHCPDISCOVER on the socket gets an offer of the host's address. Our passt
// goes to the background by re-executing itself (src/daemon.ts: Bun cannot fork), so these
// tests pin what a forking daemon gives for free: the caller gets status 0 at once, its pipes
// are let go, the PID file names the process that serves, a -F socket reaches that process.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ADDR, Topology, explain, suiteSkipReason } from "../../harness/netns.ts";
import { dhcpDiscover, dhcpOffer, passtBinaries, QemuClient } from "./_client.ts";

/** A caller of `passt -F`: connects a socketpair, starts passt on one end, plays qemu on the other. */
const FD_CLIENT_PY = `
import json, socket, struct, subprocess, sys, time
discover, argv = open(sys.argv[1], "rb").read(), sys.argv[2:]
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
t0 = time.time()
p = subprocess.Popen(argv + ["-F", str(theirs.fileno())], pass_fds=[theirs.fileno()])
theirs.close()
out = {"offer": None}
try:
    out["started_status"] = p.wait(2)    # background: the caller's process exits at once
except subprocess.TimeoutExpired:
    out["started_status"] = None         # foreground: still running
out["started_s"] = time.time() - t0
ours.sendall(struct.pack("!I", len(discover)) + discover)
ours.settimeout(5)
buf = b""
try:
    while out["offer"] is None:
        chunk = ours.recv(65536)
        if not chunk: break
        buf += chunk
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
            n = struct.unpack("!I", buf[:4])[0]; f, buf = buf[4:4 + n], buf[4 + n:]
            if len(f) > 282 and f[12:14] == b"\\x08\\x00" and f[23] == 17 and f[36:38] == b"\\x00\\x44" and f[42] == 2:
                out["offer"] = ".".join(str(b) for b in f[58:62])
except OSError as e:
    out["error"] = str(e)
ours.close()
if out["started_status"] is None:
    try: out["exit_status"] = p.wait(5)
    except subprocess.TimeoutExpired: p.kill(); out["exit_status"] = "still running"
print(json.dumps(out), flush=True)
`;

const TEST_TIMEOUT_MS = 30_000;

/** Shell: waits up to 5 s for process `$1` to be gone; prints "gone" or "alive". */
const WAIT_GONE = `i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -0 "$1" 2>/dev/null && echo alive || echo gone`;

describe.each(passtBinaries().map((b) => [b.name, b] as const))("passt daemon behaviour (%s)", (_name, bin) => {
  const skip = suiteSkipReason(bin);
  let topo: Topology;
  let discover: string;
  let fdClient: string;
  let waitGone: string;
  let n = 0;

  /** Returns fresh paths in the topology folder for one passt run. */
  function paths(): { sock: string; pid: string; log: string } {
    n++;
    return { sock: join(topo.dir, `p${n}.socket`), pid: join(topo.dir, `p${n}.pid`), log: join(topo.dir, `p${n}.log`) };
  }

  /** Resolves with the address a DHCPDISCOVER on `sock` is offered, or null. */
  async function offerOn(sock: string, close = true): Promise<string | null> {
    const c = await QemuClient.connect(sock);
    try {
      c.sendFrame(dhcpDiscover(0xd00d00 + n, n));
      const f = await c.waitFrame((f) => dhcpOffer(f, 0xd00d00 + n) !== null, 5000);
      return f && dhcpOffer(f, 0xd00d00 + n);
    } finally {
      if (close) c.close();
    }
  }

  /** Returns the PID in a PID file, or 0. */
  function pidIn(path: string): number {
    return existsSync(path) ? Number(readFileSync(path, "utf8").trim()) || 0 : 0;
  }

  beforeAll(async () => {
    if (skip) return;
    topo = await Topology.start();
    discover = topo.writeFile("discover.bin", dhcpDiscover(0xfdfd, 0xfd));
    fdClient = topo.writeFile("fd_client.py", FD_CLIENT_PY);
    waitGone = topo.writeFile("wait_gone.sh", `#!/bin/sh\n${WAIT_GONE}\n`, 0o755);
  });
  afterAll(async () => topo?.stop());

  test.skipIf(!!skip)("without -f it returns 0 at once, lets go of the caller's pipes, and the PID file names the server", async () => {
    const p = paths();
    // $(...) waits until every holder of the pipe has closed it: a daemon keeping stdout or stderr hangs it.
    const t0 = Date.now();
    const r = await topo.run(["sh", "-c", `out=$(${bin.path} -s ${p.sock} -P ${p.pid} -l ${p.log} 2>&1); echo "status=$?"`], {
      timeoutMs: 10_000,
    });
    const elapsedMs = Date.now() - t0;
    expect(r.stdout, explain("passt in $(...)", r)).toContain("status=0");
    expect(elapsedMs).toBeLessThan(5000);
    const pid = pidIn(p.pid);
    expect(pid).toBeGreaterThan(0);
    expect((await topo.run(["kill", "-0", String(pid)])).code).toBe(0);
    if (!bin.upstream2023) {
      // (Debian's passt makes itself non-dumpable, which hides /proc/PID/fd even from its own user.)
      const fds = await topo.run(["readlink", `/proc/${pid}/fd/0`, `/proc/${pid}/fd/1`, `/proc/${pid}/fd/2`]);
      expect(fds.stdout.trim().split("\n"), explain("daemon's stdio", fds)).toEqual(["/dev/null", "/dev/null", "/dev/null"]);
    }
    const sid = await topo.run(["ps", "-o", "sid=", "-p", String(pid)]);
    expect(Number(sid.stdout.trim()), explain("daemon's session", sid)).toBe(pid);
    expect(await offerOn(p.sock)).toBe(ADDR.host4);
    await topo.run(["kill", String(pid)]);
    expect((await topo.run([waitGone, String(pid)])).stdout.trim()).toBe("gone");
  }, TEST_TIMEOUT_MS);

  test.skipIf(!!skip)("-f stays in the foreground, serves, and ends on SIGTERM", async () => {
    const p = paths();
    const h = topo.spawn([bin.path, "-f", "-s", p.sock, "-P", p.pid]);
    for (let i = 0; i < 200 && !existsSync(p.sock); i++) await Bun.sleep(25);
    expect(await offerOn(p.sock)).toBe(ADDR.host4);
    expect(h.alive()).toBe(true);
    const pid = pidIn(p.pid);
    expect(pid).toBeGreaterThan(0);
    await topo.run(["kill", String(pid)]);
    const r = await h.wait(5000);
    expect(r.code, explain("passt -f after SIGTERM", r)).not.toBe(137);
  }, TEST_TIMEOUT_MS);

  test.skipIf(!!skip)("-f -1 exits with status 0 once its client leaves", async () => {
    const p = paths();
    const h = topo.spawn([bin.path, "-f", "-1", "-s", p.sock]);
    for (let i = 0; i < 200 && !existsSync(p.sock); i++) await Bun.sleep(25);
    expect(await offerOn(p.sock)).toBe(ADDR.host4);
    const r = await h.wait(5000);
    expect(r.code, explain("passt -f -1", r)).toBe(0);
  }, TEST_TIMEOUT_MS);

  test.skipIf(!!skip)("-1 in the background: the daemon exits once its client leaves", async () => {
    const p = paths();
    const r = await topo.run([bin.path, "-1", "-s", p.sock, "-P", p.pid], { timeoutMs: 10_000 });
    expect(r.code, explain("passt -1", r)).toBe(0);
    const pid = pidIn(p.pid);
    expect(pid).toBeGreaterThan(0);
    expect(await offerOn(p.sock)).toBe(ADDR.host4);
    expect((await topo.run([waitGone, String(pid)])).stdout.trim()).toBe("gone");
  }, TEST_TIMEOUT_MS);

  test.skipIf(!!skip).each([
    ["in the foreground", ["-f"]],
    ["in the background", []],
  ])("-F FD serves a socket its caller connected, %s, and exits when the caller hangs up", async (_how, args) => {
    const r = await topo.run(["python3", fdClient, discover, bin.path, ...args], { timeoutMs: 20_000 });
    expect(r.code, explain("fd_client.py", r)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.offer, explain("fd_client.py", r)).toBe(ADDR.host4);
    if (args.includes("-f")) {
      expect(out.started_status, explain("fd_client.py", r)).toBeNull();
      expect(out.exit_status, explain("fd_client.py", r)).toBe(0);
    } else {
      expect(out.started_status, explain("fd_client.py", r)).toBe(0);
      expect(out.started_s).toBeLessThan(5);
    }
  }, TEST_TIMEOUT_MS);

  // These mount a tmpfs on /tmp, which would hide a binary kept there.
  const privateTmpSkip = skip ?? (bin.path.startsWith("/tmp/") ? `${bin.path} is under /tmp` : null);

  test.skipIf(!!privateTmpSkip)("without -s: the first free /tmp/passt_N.socket; a live one is skipped, a stale one replaced", async () => {
    // A private /tmp (tmpfs in a mount namespace of its own) keeps the machine's /tmp out of it.
    const script = `
set -u
mount -t tmpfs -o mode=1777 tmpfs /tmp
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$@"; }
as_nobody ${bin.path} -P /tmp/a.pid -l /tmp/a.log >/dev/null 2>&1; echo "a status=$?"
as_nobody ${bin.path} -P /tmp/b.pid -l /tmp/b.log >/dev/null 2>&1; echo "b status=$?"
gone() { ${WAIT_GONE}; }
kill -9 "$(cat /tmp/a.pid)"; gone "$(cat /tmp/a.pid)" >/dev/null
[ -S /tmp/passt_1.socket ] && echo "stale passt_1 left behind"
as_nobody ${bin.path} -P /tmp/c.pid -l /tmp/c.log >/dev/null 2>&1; echo "c status=$?"
for x in a b c; do echo "$x: $(grep -o 'bound at [^ ]*' /tmp/$x.log)"; done
for x in b c; do kill "$(cat /tmp/$x.pid)"; done
`;
    const r = await topo.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], { user: "root", timeoutMs: 30_000 });
    expect(r.code, explain("socket path probing", r)).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines, explain("socket path probing", r)).toContain("a status=0");
    expect(lines).toContain("b status=0");
    expect(lines).toContain("c status=0");
    expect(lines).toContain("stale passt_1 left behind");
    expect(lines).toContain("a: bound at /tmp/passt_1.socket");
    expect(lines).toContain("b: bound at /tmp/passt_2.socket");
    expect(lines).toContain("c: bound at /tmp/passt_1.socket");
  }, TEST_TIMEOUT_MS);

  // Upstream replaces whatever refuses a connection there, regular files included; we only
  // ever replace a socket, so this half runs against ours only.
  test.skipIf(!!privateTmpSkip || bin.upstream2023)("a file at /tmp/passt_1.socket that is not a socket is left alone", async () => {
    const script = `
set -u
mount -t tmpfs -o mode=1777 tmpfs /tmp
echo keep > /tmp/passt_1.socket
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ${bin.path} -P /tmp/a.pid -l /tmp/a.log >/dev/null 2>&1
echo "status=$?"; echo "file: $(cat /tmp/passt_1.socket)"; echo "$(grep -o 'bound at [^ ]*' /tmp/a.log)"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ${bin.path} -f -s /tmp/passt_1.socket 2>&1; echo "explicit status=$?"
kill "$(cat /tmp/a.pid)"
`;
    const r = await topo.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], { user: "root", timeoutMs: 30_000 });
    const lines = r.stdout.split("\n");
    expect(lines, explain("regular file in the way", r)).toContain("status=0");
    expect(lines).toContain("file: keep");
    expect(lines).toContain("bound at /tmp/passt_2.socket");
    expect(r.stdout).toContain("Socket path /tmp/passt_1.socket already in use");
    expect(lines).toContain("explicit status=1");
  }, TEST_TIMEOUT_MS);
});
