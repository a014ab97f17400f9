// SPDX-License-Identifier: GPL-2.0-or-later
// constants.ts - numeric constants of the Linux/glibc ABI for x86_64 and aarch64
//
// Every export is named exactly as its C macro, so tests/unit/syscalls/layout.test.ts
// can print each one with gcc for the running architecture and compare. Values
// that differ between architectures are selected by process.arch at load.
// EPOLLET and similar high bits are given as positive numbers (u32 values).

if (process.arch !== "x64" && process.arch !== "arm64") {
  throw new Error(`syscalls/constants.ts: unsupported architecture ${process.arch}`);
}

/**
 * The values that differ between x86_64 and aarch64 (arch/arm64 uapi fcntl.h
 * and asm-generic/unistd.h); the exports below pick the running one.
 */
export const ARCH_CONSTANTS = {
  x64: {
    O_DIRECT: 0o40000, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_TMPFILE: 0o20200000,
    SYS_gettid: 186, SYS_unshare: 272, SYS_setns: 308, SYS_seccomp: 317,
  },
  arm64: {
    O_DIRECT: 0o200000, O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000, O_TMPFILE: 0o20040000,
    SYS_gettid: 178, SYS_unshare: 97, SYS_setns: 268, SYS_seccomp: 277,
  },
} as const;
const A: (typeof ARCH_CONSTANTS)["x64" | "arm64"] = ARCH_CONSTANTS[process.arch === "arm64" ? "arm64" : "x64"];

// Address families, socket types
export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

// Protocols and option levels
export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_RAW = 255;
export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SOL_TCP = 6;
export const SOL_UDP = 17;
export const SOL_IPV6 = 41;
export const SOL_NETLINK = 270;

// SOL_SOCKET options
export const SO_DEBUG = 1;
export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_DONTROUTE = 5;
export const SO_BROADCAST = 6;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_KEEPALIVE = 9;
export const SO_OOBINLINE = 10;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;
export const SO_PASSCRED = 16;
export const SO_PEERCRED = 17;
export const SO_RCVLOWAT = 18;
export const SO_BINDTODEVICE = 25;
export const SO_ACCEPTCONN = 30;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;
export const SO_PROTOCOL = 38;
export const SO_DOMAIN = 39;
export const SO_RXQ_OVFL = 40;
export const SO_PEEK_OFF = 42;
export const SO_BUSY_POLL = 46;
export const SO_INCOMING_CPU = 49;
/** getsockopt: u32 sk_meminfo[SK_MEMINFO_VARS] (linux/sock_diag.h), indexed by SK_MEMINFO. */
export const SO_MEMINFO = 55;
export const SO_ZEROCOPY = 60;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

// SOL_TCP options
export const TCP_NODELAY = 1;
export const TCP_MAXSEG = 2;
export const TCP_CORK = 3;
export const TCP_KEEPIDLE = 4;
export const TCP_KEEPINTVL = 5;
export const TCP_KEEPCNT = 6;
export const TCP_SYNCNT = 7;
export const TCP_LINGER2 = 8;
export const TCP_DEFER_ACCEPT = 9;
export const TCP_WINDOW_CLAMP = 10;
export const TCP_INFO = 11;
export const TCP_QUICKACK = 12;
export const TCP_CONGESTION = 13;
export const TCP_USER_TIMEOUT = 18;
export const TCP_REPAIR = 19;
export const TCP_REPAIR_QUEUE = 20;
export const TCP_QUEUE_SEQ = 21;
export const TCP_REPAIR_OPTIONS = 22;
export const TCP_FASTOPEN = 23;
export const TCP_NOTSENT_LOWAT = 25;

// SOL_UDP options
/** Generic segmentation offload: one send of several datagrams of this payload size (Linux 4.18). */
export const UDP_SEGMENT = 103;

// SOL_IP and SOL_IPV6 options
export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_HDRINCL = 3;
export const IP_OPTIONS = 4;
export const IP_PKTINFO = 8;
export const IP_MTU_DISCOVER = 10;
export const IP_RECVERR = 11;
export const IP_RECVTTL = 12;
export const IP_RECVTOS = 13;
export const IP_MTU = 14;
export const IP_FREEBIND = 15;
export const IP_TRANSPARENT = 19;
export const IP_RECVORIGDSTADDR = 20;
export const IP_BIND_ADDRESS_NO_PORT = 24;
export const IP_PMTUDISC_DONT = 0;
export const IP_PMTUDISC_DO = 2;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MTU_DISCOVER = 23;
export const IPV6_MTU = 24;
export const IPV6_RECVERR = 25;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;
export const IPV6_RECVTCLASS = 66;
export const IPV6_TCLASS = 67;
export const IPV6_RECVORIGDSTADDR = 74;
export const IPV6_TRANSPARENT = 75;
export const IPV6_FREEBIND = 78;

// send/recv flags
export const MSG_OOB = 0x1;
export const MSG_PEEK = 0x2;
export const MSG_DONTROUTE = 0x4;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_EOR = 0x80;
export const MSG_WAITALL = 0x100;
export const MSG_ERRQUEUE = 0x2000;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_MORE = 0x8000;
export const MSG_WAITFORONE = 0x10000;
export const MSG_ZEROCOPY = 0x4000000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

// epoll
export const EPOLLIN = 0x1;
export const EPOLLPRI = 0x2;
export const EPOLLOUT = 0x4;
export const EPOLLERR = 0x8;
export const EPOLLHUP = 0x10;
export const EPOLLRDNORM = 0x40;
export const EPOLLRDHUP = 0x2000;
export const EPOLLEXCLUSIVE = 0x10000000;
export const EPOLLWAKEUP = 0x20000000;
export const EPOLLONESHOT = 0x40000000;
export const EPOLLET = 0x80000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLL_CLOEXEC = 0o2000000;

// open(2) flags: O_DIRECTORY, O_NOFOLLOW, O_DIRECT and O_TMPFILE differ on aarch64
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT: number = A.O_DIRECT;
export const O_DIRECTORY: number = A.O_DIRECTORY;
export const O_NOFOLLOW: number = A.O_NOFOLLOW;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
export const O_TMPFILE: number = A.O_TMPFILE;
export const AT_FDCWD = -100;
export const AT_REMOVEDIR = 0x200;

// fcntl(2), splice(2)
export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const F_SETPIPE_SZ = 1031;
export const F_GETPIPE_SZ = 1032;
export const FD_CLOEXEC = 1;
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;
export const SPLICE_F_MORE = 4;
export const SPLICE_F_GIFT = 8;

// tun/tap (linux/if_tun.h) and interface flags (linux/if.h)
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNGETFEATURES = 0x800454cf;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNGETIFF = 0x800454d2;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
/** Linux 6.2+ (linux/if_tun.h): UDP segmentation offload (gso_type UDP_L4), IPv4 and IPv6; only both together. */
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_MULTICAST = 0x1000;
export const IFNAMSIZ = 16;
export const SIOCGIFNAME = 0x8910;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCSIFHWADDR = 0x8924;
export const SIOCGIFHWADDR = 0x8927;
export const SIOCGIFINDEX = 0x8933;
export const SIOCINQ = 0x541b;
export const SIOCOUTQ = 0x5411;
export const FIONREAD = 0x541b;
export const FIONBIO = 0x5421;

// signals
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGILL = 4;
export const SIGTRAP = 5;
export const SIGABRT = 6;
export const SIGBUS = 7;
export const SIGFPE = 8;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGSEGV = 11;
export const SIGUSR2 = 12;
export const SIGPIPE = 13;
export const SIGALRM = 14;
export const SIGTERM = 15;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGWINCH = 28;
export const SIG_BLOCK = 0;
export const SIG_UNBLOCK = 1;
export const SIG_SETMASK = 2;
export const SA_RESTART = 0x10000000;

// clone(2), prctl(2)
export const CLONE_VM = 0x100;
export const CLONE_FS = 0x200;
export const CLONE_FILES = 0x400;
export const CLONE_SIGHAND = 0x800;
export const CLONE_PIDFD = 0x1000;
export const CLONE_VFORK = 0x4000;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const PR_SET_PDEATHSIG = 1;
export const PR_GET_DUMPABLE = 3;
export const PR_SET_DUMPABLE = 4;
export const PR_SET_NAME = 15;
export const PR_GET_NAME = 16;
export const PR_SET_SECCOMP = 22;
export const PR_CAPBSET_DROP = 24;
export const PR_SET_CHILD_SUBREAPER = 36;
export const PR_SET_NO_NEW_PRIVS = 38;
export const PR_GET_NO_NEW_PRIVS = 39;
export const PR_CAP_AMBIENT = 47;

// netlink, rlimits, timers, signalfd, wait, inotify, random, memfd
export const NETLINK_ROUTE = 0;
/** Netlink protocol of socket dumps (linux/netlink.h): `ss` and our TCP listener scan use it. */
export const NETLINK_SOCK_DIAG = 4;
/** sock_diag request and reply type: a dump or a query for one address family (linux/sock_diag.h). */
export const SOCK_DIAG_BY_FAMILY = 20;
/** TCP state of a listening socket (netinet/tcp.h); inet_diag's state masks are 1 << state. */
export const TCP_LISTEN = 10;
export const RLIMIT_NOFILE = 7;
export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_BOOTTIME = 7;
export const TFD_TIMER_ABSTIME = 1;
export const TFD_NONBLOCK = 0o4000;
export const TFD_CLOEXEC = 0o2000000;
export const SFD_NONBLOCK = 0o4000;
export const SFD_CLOEXEC = 0o2000000;
export const P_ALL = 0;
export const P_PID = 1;
export const P_PGID = 2;
export const P_PIDFD = 3;
export const WNOHANG = 1;
export const WUNTRACED = 2;
export const WEXITED = 4;
export const WCONTINUED = 8;
export const WNOWAIT = 0x1000000;
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const CLD_DUMPED = 3;
export const IN_NONBLOCK = 0o4000;
export const IN_CLOEXEC = 0o2000000;
export const IN_MODIFY = 0x2;
export const IN_ATTRIB = 0x4;
export const IN_CLOSE_WRITE = 0x8;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const GRND_NONBLOCK = 1;
export const GRND_RANDOM = 2;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;

// syscall(2) numbers for calls made without a libc wrapper; the pidfd family
// shares numbers across architectures, the older calls do not.
export const SYS_pidfd_send_signal = 424;
export const SYS_pidfd_open = 434;
export const SYS_clone3 = 435;
export const SYS_pidfd_getfd = 438;
export const SYS_gettid: number = A.SYS_gettid;
export const SYS_unshare: number = A.SYS_unshare;
export const SYS_setns: number = A.SYS_setns;
export const SYS_seccomp: number = A.SYS_seccomp;
