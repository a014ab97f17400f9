// SPDX-License-Identifier: GPL-2.0-or-later
// child.ts - namespace helper scenarios, run by tests/integration/ns.test.ts as an unprivileged
// user (uid 65534); prints one JSON object with what it observed, for the test to check
//
// Usage: child.ts create|join|fail

import { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { nsClose, nsCreate, nsJoin, nsOpen, nsSocket, nsSpawn, nsWait, nsWriteFile, type NsAgent } from "../../../syscalls/ns.ts";
import * as sys from "../../../syscalls/libc.ts";
import { AF_INET, SOCK_STREAM } from "../../../syscalls/constants.ts";
import { nlLoopbackUp } from "../../../src/netlink.ts";

const TUNGETIFF = 0x800454d2;
const out: Record<string, unknown> = { uid: process.getuid?.() };
const dir = mkdtempSync("/tmp/pasta-ns-test-");

/** Returns the children of our main thread, to prove nothing is left behind. */
function children(): string {
  return readFileSync(`/proc/self/task/${process.pid}/children`, "utf8").trim();
}

/** Runs `script` with sh inside the agent's namespaces; returns its exit status and stdout. */
function run(agent: NsAgent, script: string): { status: number; stdout: string } {
  const file = `${dir}/out`;
  const s = nsSpawn(agent, ["sh", "-c", `exec >${file}; ${script}`]);
  if (s.failure) throw new Error(s.failure.message);
  const status = nsWait(s.pid);
  let stdout = "";
  try {
    stdout = readFileSync(file, "utf8");
  } catch {}
  return { status, stdout };
}

function sockaddrIn(port: number): Uint8Array {
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port);
  sa.set([127, 0, 0, 1], 4);
  return sa;
}

function readAll(fd: number): string {
  const buf = new Uint8Array(65536);
  let text = "";
  for (;;) {
    const n = sys.read(fd, buf, buf.length);
    if (n <= 0) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/** Creates an agent with a tap and exercises spawn, sockets, files and the tap fd. */
function create(): void {
  const agent = nsCreate({ ifname: "pasta0", uts: true });
  if (!agent.ok) throw new Error(agent.message);
  try {
    const ifr = new Uint8Array(40);
    out.tungetiff = sys.ioctl(agent.tapFd, TUNGETIFF, ifr);
    out.tapName = new TextDecoder().decode(ifr.subarray(0, ifr.indexOf(0)));

    out.exit7 = run(agent, "exit 7").status;
    const link = run(agent, "ip -o link show");
    out.ipLink = link.stdout;
    out.idInNs = run(agent, "id -u; id -g").stdout;
    out.hostname = run(agent, "hostname").stdout.trim();

    const bad = nsSpawn(agent, ["/nonexistent/command"]);
    out.execFailure = bad.failure?.message ?? null;
    out.execStatus = nsWait(bad.pid);

    // A socket the agent made lives in the namespace: bind it where the host also binds.
    out.loUp = nlLoopbackUp(agent.netlinkFd);
    const lsock = nsSocket(agent, AF_INET, SOCK_STREAM);
    const hostSock = sys.socket(AF_INET, SOCK_STREAM, 0);
    let port = 0;
    for (port = 20000 + (process.pid % 20000); ; port++) {
      if (sys.bind(hostSock, sockaddrIn(port), 16) === 0) break;
    }
    out.nsBindSamePort = sys.bind(lsock, sockaddrIn(port), 16);
    out.nsListen = sys.listen(lsock, 1);
    const client = nsSpawn(agent, ["bash", "-c", `echo hello-from-ns >/dev/tcp/127.0.0.1/${port}`]);
    const conn = sys.accept4(lsock, null, null, 0);
    out.accepted = conn >= 0;
    out.received = conn >= 0 ? readAll(conn).trim() : "";
    out.clientStatus = nsWait(client.pid);
    sys.close(conn);
    sys.close(lsock);
    sys.close(hostSock);

    out.pingGroupRange = nsWriteFile(agent, "/proc/sys/net/ipv4/ping_group_range", "0 0");
    const dev = nsOpen(agent, "/proc/net/dev");
    out.nsProcNetDev = dev >= 0 ? readAll(dev) : String(dev);
    sys.close(dev);
    out.hostProcNetDev = readFileSync("/proc/net/dev", "utf8");
    out.missingFile = nsOpen(agent, "/nonexistent");

    sys.close(agent.tapFd);
    sys.close(agent.netlinkFd);
  } finally {
    out.agentStatus = nsClose(agent);
  }
  out.childrenAfter = children();
}

/** Joins the namespaces of a process made by `unshare -Urn`, by PID. */
async function join(): Promise<void> {
  const holder = Bun.spawn(["setpriv", "--pdeathsig", "KILL", "unshare", "-Urn", "sleep", "60"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const own = readlinkSync("/proc/self/ns/net");
  try {
    let target = own;
    for (let i = 0; i < 300 && target === own; i++) {
      await Bun.sleep(10);
      try {
        target = readlinkSync(`/proc/${holder.pid}/ns/net`);
      } catch {}
    }
    out.targetNet = target;
    out.ownNet = own;
    const agent = nsJoin({ pid: holder.pid, ifname: "pasta0" });
    if (!agent.ok) throw new Error(agent.message);
    try {
      out.agentNet = readlinkSync(`/proc/${agent.pid}/ns/net`);
      out.agentUser = readlinkSync(`/proc/${agent.pid}/ns/user`);
      out.targetUser = readlinkSync(`/proc/${holder.pid}/ns/user`);
      out.ipLink = run(agent, "ip -o link show").stdout;
      sys.close(agent.tapFd);
      sys.close(agent.netlinkFd);
    } finally {
      out.agentStatus = nsClose(agent);
    }
    const bad = nsJoin({ pid: 999999999 });
    out.badPid = bad.ok ? "ok" : bad.message;
  } finally {
    holder.kill("SIGKILL");
    await holder.exited;
  }
  out.childrenAfter = children();
}

/** Tries to create an agent where that must fail; reports the message and leftovers. */
function fail(): void {
  const agent = nsCreate({ ifname: "pasta0" });
  if (agent.ok) {
    nsClose(agent);
    out.message = "unexpectedly succeeded";
  } else {
    out.message = agent.message;
    out.step = agent.step;
  }
  out.childrenAfter = children();
}

try {
  const mode = process.argv[2];
  if (mode === "create") create();
  else if (mode === "join") await join();
  else if (mode === "fail") fail();
  else throw new Error(`unknown mode ${mode}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
