// SPDX-License-Identifier: GPL-2.0-or-later
// ns.test.ts - namespace agent and spawning, run as an unprivileged user the way pasta runs
//
// Tests run as root here, so each scenario runs tests/integration/ns/child.ts under
// `setpriv --reuid=65534`, in a private mount namespace where /dev/net is a tmpfs holding a
// 0666 tun node (the real one is 0600). The child reports JSON; the checks are made here.

import { describe, expect, test } from "bun:test";

const BUN = process.execPath;
const CHILD = "tests/integration/ns/child.ts";
const NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp";
const OPEN_TUN = "mount -t tmpfs -o mode=755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200";

/** Returns the exit status of a command run to completion, stdout and stderr ignored. */
function status(cmd: string[]): number {
  return Bun.spawnSync(cmd, { stdout: "ignore", stderr: "ignore" }).exitCode ?? -1;
}

const isRoot = process.getuid?.() === 0;
const rootless = isRoot && status(["sh", "-c", `${NOBODY} unshare -Ur true`]) === 0;

/** Runs the child through `sh -c script` (the script ends by exec'ing it); returns its report. */
async function child(script: string): Promise<Record<string, any>> {
  const proc = Bun.spawn(["sh", "-c", script], { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`child exited ${code}: ${stderr}`);
  return JSON.parse(stdout);
}

describe.skipIf(!rootless)("nsCreate() as an unprivileged user", async () => {
  const r = await child(`unshare -m sh -c '${OPEN_TUN} && exec ${NOBODY} ${BUN} run ${CHILD} create'`);

  test("the work ran as uid 65534 and the spawned command is uid/gid 0 in the namespace", () => {
    expect(r.uid).toBe(65534);
    expect(r.idInNs).toBe("0\n0\n");
  });

  test("the tap fd is valid: TUNGETIFF gives its name", () => {
    expect(r.tungetiff).toBe(0);
    expect(r.tapName).toBe("pasta0");
  });

  test("a spawned `sh -c 'exit 7'` gives status 7", () => {
    expect(r.exit7).toBe(7);
  });

  test("`ip link` in the namespace lists the tap, and the host does not have it", () => {
    expect(r.ipLink).toMatch(/^2: pasta0: /m);
    expect(r.nsProcNetDev).toContain("pasta0:");
    expect(r.hostProcNetDev).not.toContain("pasta0:");
  });

  test("the UTS namespace has hostname pasta-<host>", () => {
    expect(r.hostname).toMatch(/^pasta-./);
  });

  test("an exec failure is reported with the command, and its status is 127", () => {
    expect(r.execFailure).toBe("execvp /nonexistent/command: No such file or directory");
    expect(r.execStatus).toBe(127);
  });

  test("a socket made by the agent lives in the namespace and accepts from a spawned command", () => {
    expect(r.loUp).toBe(0);
    // The host holds the same port on its own 127.0.0.1: only a namespaced socket can bind it too.
    expect(r.nsBindSamePort).toBe(0);
    expect(r.nsListen).toBe(0);
    expect(r.accepted).toBe(true);
    expect(r.received).toBe("hello-from-ns");
    expect(r.clientStatus).toBe(0);
  });

  test("the agent writes namespace sysctls and opens files there, returning -errno on failure", () => {
    expect(r.pingGroupRange).toBe(0);
    expect(r.missingFile).toBe(-2);
  });

  test("closing the agent reaps it and leaves no child behind", () => {
    expect(r.agentStatus).toBe(0);
    expect(r.childrenAfter).toBe("");
  });
});

describe.skipIf(!rootless)("nsJoin() as an unprivileged user", async () => {
  const r = await child(`unshare -m sh -c '${OPEN_TUN} && exec ${NOBODY} ${BUN} run ${CHILD} join'`);

  test("joining by PID enters that process's user and network namespaces", () => {
    expect(r.targetNet).not.toBe(r.ownNet);
    expect(r.agentNet).toBe(r.targetNet);
    expect(r.agentUser).toBe(r.targetUser);
  });

  test("the tap is created in the joined namespace", () => {
    expect(r.ipLink).toMatch(/^2: pasta0: /m);
  });

  test("a PID that does not exist gives one clear line", () => {
    expect(r.badPid).toBe("open /proc/999999999/ns/net: No such file or directory");
  });

  test("nothing is left behind", () => {
    expect(r.agentStatus).toBe(0);
    expect(r.childrenAfter).toBe("");
  });
});

describe.skipIf(!rootless)("nsCreate() failures give one clear line and leave nothing behind", () => {
  test.each([
    ["a 0600 /dev/net/tun", `exec ${NOBODY} ${BUN} run ${CHILD} fail`, "open /dev/net/tun: Permission denied"],
    [
      "no /dev/net/tun",
      `unshare -m sh -c 'mount -t tmpfs tmpfs /dev/net && exec ${NOBODY} ${BUN} run ${CHILD} fail'`,
      "open /dev/net/tun: No such file or directory",
    ],
    [
      "no user namespaces left (max_user_namespaces = 0)",
      `unshare -U --map-root-user sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec env HOME=/tmp ${BUN} run ${CHILD} fail'`,
      "unshare: No space left on device",
    ],
  ])("with %s", async (_name, script, message) => {
    const r = await child(script);
    expect(r.message).toBe(message);
    expect(r.childrenAfter).toBe("");
  });
});
