// SPDX-License-Identifier: GPL-2.0-or-later
// layout.test.ts - struct layouts, constants and errno values checked against gcc and the C headers

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as C from "../../../syscalls/constants.ts";
import * as S from "../../../syscalls/structs.ts";
import { Errno } from "../../../syscalls/errno.ts";

/** Our layout table name -> C type, and for each field the C member (or a full C expression). */
const STRUCTS: Record<string, [string, Record<string, string>]> = {
  SOCKADDR_IN: ["struct sockaddr_in", { FAMILY: "sin_family", PORT: "sin_port", ADDR: "sin_addr" }],
  SOCKADDR_IN6: ["struct sockaddr_in6", {
    FAMILY: "sin6_family", PORT: "sin6_port", FLOWINFO: "sin6_flowinfo", ADDR: "sin6_addr", SCOPE_ID: "sin6_scope_id",
  }],
  SOCKADDR_UN: ["struct sockaddr_un", { FAMILY: "sun_family", PATH: "sun_path" }],
  SOCKADDR_NL: ["struct sockaddr_nl", { FAMILY: "nl_family", PID: "nl_pid", GROUPS: "nl_groups" }],
  SOCKADDR_STORAGE: ["struct sockaddr_storage", { FAMILY: "ss_family" }],
  IOVEC: ["struct iovec", { BASE: "iov_base", LEN: "iov_len" }],
  MSGHDR: ["struct msghdr", {
    NAME: "msg_name", NAMELEN: "msg_namelen", IOV: "msg_iov", IOVLEN: "msg_iovlen",
    CONTROL: "msg_control", CONTROLLEN: "msg_controllen", FLAGS: "msg_flags",
  }],
  MMSGHDR: ["struct mmsghdr", { HDR: "msg_hdr", LEN: "msg_len" }],
  CMSGHDR: ["struct cmsghdr", {
    LEN: "cmsg_len", LEVEL: "cmsg_level", TYPE: "cmsg_type", DATA: "=(long long)CMSG_LEN(0)",
  }],
  EPOLL_EVENT: ["struct epoll_event", { EVENTS: "events", DATA: "data" }],
  IFREQ: ["struct ifreq", {
    NAME: "ifr_name", FLAGS: "ifr_flags", IFINDEX: "ifr_ifindex", MTU: "ifr_mtu", HWADDR: "ifr_hwaddr",
    HWADDR_DATA: "ifr_hwaddr.sa_data",
  }],
  TIMESPEC: ["struct timespec", { SEC: "tv_sec", NSEC: "tv_nsec" }],
  ITIMERSPEC: ["struct itimerspec", {
    INTERVAL_SEC: "it_interval.tv_sec", INTERVAL_NSEC: "it_interval.tv_nsec",
    VALUE_SEC: "it_value.tv_sec", VALUE_NSEC: "it_value.tv_nsec",
  }],
  SIGNALFD_SIGINFO: ["struct signalfd_siginfo", {
    SIGNO: "ssi_signo", ERRNO: "ssi_errno", CODE: "ssi_code", PID: "ssi_pid", UID: "ssi_uid", STATUS: "ssi_status",
  }],
  SIGINFO: ["siginfo_t", {
    SIGNO: "si_signo", ERRNO: "si_errno", CODE: "si_code", PID: "si_pid", UID: "si_uid", STATUS: "si_status",
  }],
  SIGSET: ["sigset_t", {}],
  SIGACTION: ["struct sigaction", { HANDLER: "sa_handler", MASK: "sa_mask", FLAGS: "sa_flags", RESTORER: "sa_restorer" }],
  RLIMIT: ["struct rlimit", { CUR: "rlim_cur", MAX: "rlim_max" }],
  LINGER: ["struct linger", { ONOFF: "l_onoff", LINGER: "l_linger" }],
  IN_PKTINFO: ["struct in_pktinfo", { IFINDEX: "ipi_ifindex", SPEC_DST: "ipi_spec_dst", ADDR: "ipi_addr" }],
  IN6_PKTINFO: ["struct in6_pktinfo", { ADDR: "ipi6_addr", IFINDEX: "ipi6_ifindex" }],
  UCRED: ["struct ucred", { PID: "pid", UID: "uid", GID: "gid" }],
  NLMSGHDR: ["struct nlmsghdr", {
    LEN: "nlmsg_len", TYPE: "nlmsg_type", FLAGS: "nlmsg_flags", SEQ: "nlmsg_seq", PID: "nlmsg_pid",
  }],
  NLMSGERR: ["struct nlmsgerr", { ERROR: "error", MSG: "msg" }],
  INET_DIAG_SOCKID: ["struct inet_diag_sockid", {
    SPORT: "idiag_sport", DPORT: "idiag_dport", SRC: "idiag_src", DST: "idiag_dst", IF: "idiag_if", COOKIE: "idiag_cookie",
  }],
  INET_DIAG_REQ_V2: ["struct inet_diag_req_v2", {
    FAMILY: "sdiag_family", PROTOCOL: "sdiag_protocol", EXT: "idiag_ext", PAD: "pad", STATES: "idiag_states", ID: "id",
  }],
  INET_DIAG_MSG: ["struct inet_diag_msg", {
    FAMILY: "idiag_family", STATE: "idiag_state", TIMER: "idiag_timer", RETRANS: "idiag_retrans", ID: "id",
    SPORT: "id.idiag_sport", DPORT: "id.idiag_dport", SRC: "id.idiag_src", DST: "id.idiag_dst", IF: "id.idiag_if",
    COOKIE: "id.idiag_cookie", EXPIRES: "idiag_expires", RQUEUE: "idiag_rqueue", WQUEUE: "idiag_wqueue",
    UID: "idiag_uid", INODE: "idiag_inode",
  }],
  VIRTIO_NET_HDR: ["struct virtio_net_hdr", {
    FLAGS: "flags", GSO_TYPE: "gso_type", HDR_LEN: "hdr_len", GSO_SIZE: "gso_size",
    CSUM_START: "csum_start", CSUM_OFFSET: "csum_offset",
    SIZE_MRG_RXBUF: "=(long long)sizeof(struct virtio_net_hdr_mrg_rxbuf)",
    NUM_BUFFERS: "=(long long)offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers)",
  }],
  TCP_INFO_LAYOUT: ["struct tcp_info", {
    // Newer headers append fields; our table ends after tcpi_snd_wnd.
    SIZE: "=(long long)(offsetof(struct tcp_info, tcpi_snd_wnd) + 4)",
    STATE: "tcpi_state", CA_STATE: "tcpi_ca_state", RETRANSMITS: "tcpi_retransmits", OPTIONS: "tcpi_options",
    WSCALE: "=(long long)offsetof(struct tcp_info, tcpi_options) + 1", // a bitfield byte: follows options
    RTO: "tcpi_rto", ATO: "tcpi_ato", SND_MSS: "tcpi_snd_mss", RCV_MSS: "tcpi_rcv_mss", UNACKED: "tcpi_unacked",
    LAST_DATA_SENT: "tcpi_last_data_sent", LAST_DATA_RECV: "tcpi_last_data_recv", PMTU: "tcpi_pmtu",
    RCV_SSTHRESH: "tcpi_rcv_ssthresh", RTT: "tcpi_rtt", RTTVAR: "tcpi_rttvar", SND_SSTHRESH: "tcpi_snd_ssthresh",
    SND_CWND: "tcpi_snd_cwnd", ADVMSS: "tcpi_advmss", RCV_SPACE: "tcpi_rcv_space", TOTAL_RETRANS: "tcpi_total_retrans",
    PACING_RATE: "tcpi_pacing_rate", BYTES_ACKED: "tcpi_bytes_acked", BYTES_RECEIVED: "tcpi_bytes_received",
    NOTSENT_BYTES: "tcpi_notsent_bytes", MIN_RTT: "tcpi_min_rtt", DELIVERY_RATE: "tcpi_delivery_rate",
    BYTES_SENT: "tcpi_bytes_sent", SND_WND: "tcpi_snd_wnd",
  }],
};

const HEADERS = `
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
/* Linux 6.2 added them ("tun: Enable USO"); older linux-libc-dev lacks them. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
`;

/** struct tcp_info comes from linux/tcp.h, which clashes with netinet/tcp.h: a second unit. */
const TCP_HEADERS = `
#include <stdio.h>
#include <stddef.h>
#include <linux/tcp.h>
`;

type Table = Record<string, number>;
const layouts = S as unknown as Record<string, Table>;
const constants = Object.entries(C).filter((e): e is [string, number] => typeof e[1] === "number");
const errnos = Object.entries(Errno);

/** Builds, compiles and runs the C program; returns "NAME value" lines as a map. */
function fromGcc(): Map<string, number> {
  const main: string[] = [];
  const tcp: string[] = [];
  let lines = main;
  const out = (key: string, expr: string) => lines.push(`  printf("%s %lld\\n", "${key}", (long long)(${expr}));`);
  for (const [table, [ctype, fields]] of Object.entries(STRUCTS)) {
    lines = ctype === "struct tcp_info" ? tcp : main;
    if (!("SIZE" in fields)) out(`${table}.SIZE`, `sizeof(${ctype})`);
    for (const [field, member] of Object.entries(fields)) {
      out(`${table}.${field}`, member.startsWith("=") ? member.slice(1) : `offsetof(${ctype}, ${member})`);
    }
  }
  lines = main;
  for (const [name] of constants) out(name, name);
  for (const [name] of errnos) out(`errno.${name}`, name);
  const dir = mkdtempSync(join(tmpdir(), "layout-"));
  try {
    writeFileSync(join(dir, "tcp.c"), `${TCP_HEADERS}\nvoid tcp_layout(void)\n{\n${tcp.join("\n")}\n}\n`);
    writeFileSync(
      join(dir, "layout.c"),
      `${HEADERS}\nvoid tcp_layout(void);\nint main(void)\n{\n${main.join("\n")}\n  tcp_layout();\n  return 0;\n}\n`,
    );
    const cc = Bun.spawnSync([
      "gcc", "-Wall", "-Werror", "-o", join(dir, "layout"), join(dir, "layout.c"), join(dir, "tcp.c"),
    ]);
    if (cc.exitCode !== 0) throw new Error(`gcc failed:\n${cc.stderr.toString()}`);
    const run = Bun.spawnSync([join(dir, "layout")]);
    const map = new Map<string, number>();
    for (const line of run.stdout.toString().trim().split("\n")) {
      const [k, v] = line.split(" ");
      map.set(k!, Number(v));
    }
    return map;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const gcc = fromGcc();

describe(`layouts match gcc on ${process.arch}`, () => {
  const rows: [string, number][] = [];
  for (const [table, [, fields]] of Object.entries(STRUCTS)) {
    const t = layouts[table];
    if (t === undefined) throw new Error(`structs.ts has no ${table}`);
    for (const field of ["SIZE", ...Object.keys(fields).filter((f) => f !== "SIZE")]) {
      rows.push([`${table}.${field}`, t[field]!]);
    }
  }
  test.each(rows)("%s is %d", (key, ours) => {
    expect(gcc.get(key)).toBe(ours);
  });
});

describe(`constants match the C headers on ${process.arch}`, () => {
  test.each(constants)("%s is %d", (name, ours) => {
    expect(gcc.get(name)).toBe(ours);
  });
});

describe("errno values match <errno.h>", () => {
  test.each(errnos)("%s is %d", (name, ours) => {
    expect(gcc.get(`errno.${name}`)).toBe(ours);
  });
});

describe("aarch64 tables hold the arm64 ABI values", () => {
  // From arch/arm64/include/uapi/asm/fcntl.h, include/uapi/asm-generic/unistd.h
  // and the unpacked struct epoll_event of every architecture but x86_64.
  test.each([
    ["O_DIRECTORY", 0o40000],
    ["O_NOFOLLOW", 0o100000],
    ["O_DIRECT", 0o200000],
    ["O_TMPFILE", 0o20000000 | 0o40000],
    ["SYS_gettid", 178],
    ["SYS_unshare", 97],
    ["SYS_setns", 268],
    ["SYS_seccomp", 277],
  ] as const)("arm64 %s is %d", (name, value) => {
    expect<number>(C.ARCH_CONSTANTS.arm64[name]).toBe(value);
  });

  test("arm64 epoll_event is 16 bytes with data at offset 8", () => {
    expect(S.ARCH_LAYOUTS.arm64.EPOLL_EVENT).toEqual({ SIZE: 16, EVENTS: 0, DATA: 8 });
  });

  test("the running architecture's tables are the ones exported", () => {
    const arch = process.arch === "arm64" ? "arm64" : "x64";
    expect(S.EPOLL_EVENT).toEqual(S.ARCH_LAYOUTS[arch].EPOLL_EVENT);
    for (const [name, value] of Object.entries(C.ARCH_CONSTANTS[arch])) {
      expect((C as unknown as Record<string, number>)[name]).toBe(value);
    }
  });
});
