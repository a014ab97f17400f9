// SPDX-License-Identifier: GPL-2.0-or-later
// ns.ts - namespace agent (create or join a user+net namespace) and spawning into it
//
// The C side (nshelper.c, read its "Theory of operation") is embedded as text, so a
// `bun build --compile` executable carries it, written to a memfd and compiled by TinyCC
// through /proc/self/fd/N on first use: `cc` cannot read Bun's embedded $bunfs paths.

import { cc, FFIType } from "bun:ffi";
import { writeSync } from "node:fs";
import { close, memfd_create } from "./libc.ts";
import { errnoName } from "./errno.ts";
import src from "./nshelper.c" with { type: "text" };

/** ns_agent_start() flags, as in nshelper.c. */
const NSF_JOIN = 0x01;
const NSF_TAP = 0x02;
const NSF_VNET_HDR = 0x04;
const NSF_TAP_NONBLOCK = 0x08;
const NSF_UTS = 0x10;
const NSF_USERNS_OWNER = 0x20;
const NSF_NETNS_ONLY = 0x40;

/** ns_spawn() join mask, as in nshelper.c. */
const NSJ_USER = 0x01;
const NSJ_NET = 0x02;
const NSJ_UTS = 0x04;

/** Agent requests, as in nshelper.c. */
const OP_SOCKET = 1;
const OP_OPEN = 2;
const OP_WRITE = 3;
const OP_EXIT = 4;

const MFD_CLOEXEC = 1;

/** What each `enum ns_step` value of nshelper.c did, for the error line; index = value. */
const STEP_NAMES = [
  "ok",
  "socketpair",
  "fork",
  "namespace helper",
  "prctl PR_SET_PDEATHSIG",
  "unshare",
  "write /proc/self/setgroups",
  "write /proc/self/uid_map",
  "write /proc/self/gid_map",
  "sethostname",
  "open user namespace",
  "open network namespace",
  "ioctl NS_GET_USERNS",
  "setns user namespace",
  "setns network namespace",
  "open /dev/net/tun",
  "ioctl TUNSETIFF",
  "socket AF_NETLINK",
  "sendmsg",
  "pipe2",
  "open /proc/PID/ns",
  "setns UTS namespace",
  "setresgid",
  "setresuid",
  "execvp",
  "arguments",
] as const;

const STEP_OPEN_USERNS = 10;
const STEP_OPEN_NETNS = 11;
const STEP_EXEC = 24;

const symbols = {
  ns_agent_start: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u32, FFIType.u32, FFIType.ptr],
    returns: FFIType.i32,
  },
  ns_agent_call: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32],
    returns: FFIType.i32,
  },
  ns_spawn: { args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  ns_wait: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  ns_pidfd_open: { args: [FFIType.i32], returns: FFIType.i32 },
  ns_strerror: { args: [FFIType.i32], returns: FFIType.cstring },
} as const;

type Helper = ReturnType<typeof cc<typeof symbols>>["symbols"];
let helper: Helper | null = null;

/**
 * Returns the compiled helper, compiling it on first use (1-30 ms).
 * Throws if TinyCC rejects the source: that is a build bug, not an OS outcome.
 * @syscalls memfd_create write close
 */
function load(): Helper {
  if (helper) return helper;
  const fd = memfd_create("nshelper.c", MFD_CLOEXEC);
  if (fd < 0) throw new Error(`memfd_create for the namespace helper: ${errnoName(fd)}`);
  try {
    writeSync(fd, src);
    helper = cc({ source: `/proc/self/fd/${fd}`, library: ["c"], symbols }).symbols;
  } finally {
    close(fd);
  }
  return helper;
}

const encoder = new TextEncoder();

/** Returns s as NUL-terminated UTF-8 bytes. */
function cstr(s: string): Uint8Array {
  const b = new Uint8Array(Buffer.byteLength(s) + 1);
  encoder.encodeInto(s, b);
  return b;
}

/** A failed namespace step, ready for `die()`: `message` is e.g. "open /dev/net/tun: Permission denied". */
export interface NsFailure {
  readonly ok: false;
  /** What failed, e.g. "open /dev/net/tun", "unshare". */
  readonly step: string;
  /** Positive errno value. */
  readonly errno: number;
  readonly message: string;
}

/** A running agent in a user+net namespace and the descriptors it handed over. */
export interface NsAgent {
  readonly ok: true;
  /** Agent process id; its /proc/PID/ns/* are the namespaces. */
  readonly pid: number;
  /** Our end of the agent's SOCK_SEQPACKET socketpair. */
  readonly sock: number;
  /** Tap device fd (-1 if no tap was asked for). */
  readonly tapFd: number;
  /** rtnetlink socket opened inside the namespace. */
  readonly netlinkFd: number;
  /** Which namespaces nsSpawn() enters (NSJ_* mask). */
  readonly join: number;
}

/** Tap options shared by nsCreate() and nsJoin(). */
export interface NsTapOptions {
  /** Interface name, at most 15 bytes; no tap is opened without it. */
  ifname?: string;
  /** Ask for IFF_VNET_HDR (a 10-byte virtio-net header on each frame). */
  vnetHdr?: boolean;
  /** Open the tap with O_NONBLOCK. */
  nonblock?: boolean;
}

/** Options of nsCreate(). */
export interface NsCreateOptions extends NsTapOptions {
  /** Also unshare the UTS namespace and set the hostname to pasta-<host>. */
  uts?: boolean;
}

/** Options of nsJoin(): a PID, or a netns path with an optional userns path. */
export type NsJoinOptions = NsTapOptions &
  (
    | { pid: number }
    | {
        netns: string;
        /** User namespace to enter; without it, the netns's owner (NS_GET_USERNS). */
        userns?: string;
        /** Enter no user namespace: we already hold CAP_SYS_ADMIN over the netns. */
        netnsOnly?: boolean;
      }
  );

/** Returns the C library's text for a positive errno, e.g. "Permission denied". */
export function strerror(errno: number): string {
  return String(load().ns_strerror(errno));
}

function failure(step: number, errno: number, detail?: string): NsFailure {
  const name = detail ?? STEP_NAMES[step] ?? `step ${step}`;
  return { ok: false, step: name, errno, message: `${name}: ${strerror(errno)}` };
}

function tapFlags(opts: NsTapOptions): number {
  if (opts.ifname === undefined) return 0;
  return NSF_TAP | (opts.vnetHdr ? NSF_VNET_HDR : 0) | (opts.nonblock ? NSF_TAP_NONBLOCK : 0);
}

function start(
  flags: number,
  opts: NsTapOptions,
  userns: string | null,
  netns: string | null,
  join: number,
): NsAgent | NsFailure {
  const out = new Int32Array(6);
  const ifname = opts.ifname === undefined ? null : cstr(opts.ifname);
  const u = userns === null ? null : cstr(userns);
  const n = netns === null ? null : cstr(netns);
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const r = load().ns_agent_start(flags, ifname, u, n, uid, gid, out);
  if (r < 0) {
    const step = out[4] ?? 0;
    const detail =
      step === STEP_OPEN_USERNS && userns !== null
        ? `open ${userns}`
        : step === STEP_OPEN_NETNS && netns !== null
          ? `open ${netns}`
          : undefined;
    return failure(step, out[5] ?? 0, detail);
  }
  return {
    ok: true,
    pid: out[0] ?? -1,
    sock: out[1] ?? -1,
    tapFd: out[2] ?? -1,
    netlinkFd: out[3] ?? -1,
    join,
  };
}

/**
 * Returns an agent in a new user and network namespace (uid/gid mapped to 0, setgroups
 * denied), with a tap if `ifname` is given, or an NsFailure naming the step that failed.
 * Nothing is left behind on failure. The agent dies when we close `sock` or exit.
 * Call from the main thread: the agent's PR_SET_PDEATHSIG follows the calling thread.
 * @example const ns = nsCreate({ ifname: "tap0" }); if (!ns.ok) die(ns.message);
 * @syscalls socketpair fork recvmsg wait4 close
 */
export function nsCreate(opts: NsCreateOptions = {}): NsAgent | NsFailure {
  const uts = opts.uts ? NSF_UTS : 0;
  return start(tapFlags(opts) | uts, opts, null, null, NSJ_USER | NSJ_NET | (uts ? NSJ_UTS : 0));
}

/**
 * Returns an agent that joined existing namespaces (by PID, or a netns path with its userns
 * path, its owning userns, or no userns at all), with a tap there if `ifname` is given, or an
 * NsFailure naming the step that failed.
 * @example const ns = nsJoin({ pid: 1234, ifname: "tap0" });
 * @syscalls socketpair fork recvmsg wait4 close
 */
export function nsJoin(opts: NsJoinOptions): NsAgent | NsFailure {
  let flags = NSF_JOIN | tapFlags(opts);
  let userns: string | null = null;
  let netns: string;
  let join = NSJ_USER | NSJ_NET;
  if ("pid" in opts) {
    userns = `/proc/${opts.pid}/ns/user`;
    netns = `/proc/${opts.pid}/ns/net`;
  } else {
    netns = opts.netns;
    if (opts.netnsOnly) {
      flags |= NSF_NETNS_ONLY;
      join = NSJ_NET;
    } else if (opts.userns !== undefined) {
      userns = opts.userns;
    } else {
      flags |= NSF_USERNS_OWNER;
    }
  }
  return start(flags, opts, userns, netns, join);
}

/**
 * Returns a socket fd created inside the agent's network namespace (it stays bound to that
 * namespace wherever it is used), or -errno. SOCK_CLOEXEC is always added.
 * @syscalls sendmsg recvmsg
 */
export function nsSocket(agent: NsAgent, domain: number, type: number, protocol = 0): number {
  return load().ns_agent_call(agent.sock, OP_SOCKET, domain, type, protocol, null, null, 0);
}

/**
 * Returns a read-only fd for `path` opened by the agent (e.g. /proc/net/tcp of the namespace),
 * or -errno.
 * @syscalls sendmsg recvmsg
 */
export function nsOpen(agent: NsAgent, path: string): number {
  return load().ns_agent_call(agent.sock, OP_OPEN, 0, 0, 0, cstr(path), null, 0);
}

/**
 * Returns 0 once the agent wrote `data` to `path` in one write(), or -errno; e.g.
 * `nsWriteFile(a, "/proc/sys/net/ipv4/ping_group_range", "0 0")`.
 * @syscalls sendmsg recvmsg
 */
export function nsWriteFile(agent: NsAgent, path: string, data: string): number {
  const bytes = encoder.encode(data);
  return load().ns_agent_call(agent.sock, OP_WRITE, 0, 0, 0, cstr(path), bytes, bytes.length);
}

/**
 * Tells the agent to exit, closes our descriptors of it (not tapFd or netlinkFd: the caller
 * owns those) and reaps it. Returns the agent's exit status, or -errno.
 * @syscalls sendmsg close wait4
 */
export function nsClose(agent: NsAgent): number {
  const h = load();
  h.ns_agent_call(agent.sock, OP_EXIT, 0, 0, 0, null, null, 0);
  close(agent.sock);
  return h.ns_wait(agent.pid, 0);
}

/** Result of nsSpawn(): the child's pid, and the failure if it could not exec. */
export interface NsSpawned {
  /** Our direct child, or -1 if none was started. Reap it with nsWait() or a pidfd. */
  readonly pid: number;
  /** Why the command did not start (it then exits with status 127), or null. */
  readonly failure: NsFailure | null;
}

/**
 * Starts `argv` inside the agent's namespaces as uid/gid 0, with default signal dispositions
 * and mask. Returns the pid of our direct child and, if exec failed (the child then exits 127,
 * like a shell), the failure; pid is -1 if no child could be forked.
 * @example const { pid } = nsSpawn(ns, [process.env.SHELL ?? "/bin/sh"]);
 * @syscalls pipe2 fork read close openat setns setresuid setresgid execve rt_sigaction rt_sigprocmask
 */
export function nsSpawn(agent: NsAgent, argv: readonly string[]): NsSpawned {
  if (argv.length === 0) throw new RangeError("nsSpawn: empty argv");
  const parts = argv.map((a) => {
    if (a.includes("\0")) throw new RangeError(`nsSpawn: NUL in argument ${JSON.stringify(a)}`);
    return cstr(a);
  });
  const args = Buffer.concat(parts);
  const out = new Int32Array(2);
  const pid = load().ns_spawn(agent.pid, agent.join, args, args.length, out);
  const step = out[0] ?? 0;
  if (pid < 0) return { pid: -1, failure: failure(step, -pid) };
  if (step === 0) return { pid, failure: null };
  return { pid, failure: failure(step, out[1] ?? 0, step === STEP_EXEC ? `execvp ${argv[0]}` : undefined) };
}

/**
 * Reaps child `pid`. Returns its exit status, 128 + signal number if a signal killed it,
 * -EAGAIN if `nohang` and it still runs, or -errno (-ECHILD: not our child).
 * Blocking stalls Bun's event loop: outside tests, use a pidfd in the epoll set.
 * @syscalls wait4
 */
export function nsWait(pid: number, nohang = false): number {
  return load().ns_wait(pid, nohang ? 1 : 0);
}

/**
 * Returns a pidfd for `pid` (readable once the process exits), or -errno.
 * @syscalls pidfd_open
 */
export function pidfdOpen(pid: number): number {
  return load().ns_pidfd_open(pid);
}
