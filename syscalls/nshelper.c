// SPDX-License-Identifier: GPL-2.0-or-later
// nshelper.c - namespace agent and spawner, compiled at run time by bun:ffi cc (TinyCC)
//
// Theory of operation
//
// Bun is multithreaded, so it can neither unshare(CLONE_NEWUSER) nor setns() into a user
// namespace, and a fork() from JS crashes once the child runs JS again. Everything that must
// happen in a single-threaded process therefore happens here, in C code that forks and whose
// child never returns to JS:
//
// - ns_agent_start() forks an "agent". The agent creates (unshare) or joins (setns) a user and
//   network namespace, opens the tap device and an rtnetlink socket there, and sends both file
//   descriptors back over a SOCK_SEQPACKET socketpair (SCM_RIGHTS) together with a status: the
//   step that failed and its errno. It then stays in the namespace and serves requests on the
//   same socketpair (make a socket, open a file, write a file) until the socketpair closes or
//   its parent dies (PR_SET_PDEATHSIG).
// - ns_spawn() forks a command that joins the agent's namespaces through /proc/<agent>/ns/*
//   and execs. Failures before or at exec travel back over a CLOEXEC pipe; the child then exits
//   with status 127, like a shell.
//
// No system header is included (TinyCC in Bun has none): prototypes, constants and structure
// layouts below are the x86_64/aarch64 Linux (LP64, glibc) ones, declared by hand.
//
// @syscalls fork clone socketpair prctl getppid unshare openat write close ioctl socket
// @syscalls sendmsg recvmsg setns readlink uname sethostname pipe2 read rt_sigaction
// @syscalls rt_sigprocmask setresuid setresgid execve wait4 exit_group close_range pidfd_open

typedef unsigned long size_t;
typedef long ssize_t;

int fork(void);
int unshare(int flags);
int setns(int fd, int nstype);
int open(const char *path, int flags, ...);
int close(int fd);
int dup2(int oldfd, int newfd);
ssize_t read(int fd, void *buf, size_t len);
ssize_t write(int fd, const void *buf, size_t len);
int ioctl(int fd, unsigned long req, ...);
int socket(int domain, int type, int protocol);
int socketpair(int domain, int type, int protocol, int sv[2]);
ssize_t sendmsg(int fd, const void *msg, int flags);
ssize_t recvmsg(int fd, void *msg, int flags);
int prctl(int option, ...);
int getppid(void);
int getpid(void);
ssize_t readlink(const char *path, char *buf, size_t len);
int gethostname(char *name, size_t len);
int sethostname(const char *name, size_t len);
int pipe2(int fds[2], int flags);
int setresuid(unsigned ruid, unsigned euid, unsigned suid);
int setresgid(unsigned rgid, unsigned egid, unsigned sgid);
int execvp(const char *file, char *const argv[]);
int waitpid(int pid, int *status, int options);
int kill(int pid, int sig);
long syscall(long nr, ...);
void _exit(int status);
int *__errno_location(void);
char *strerror(int errnum);
void *signal(int sig, void *handler);
int sigprocmask(int how, const void *set, void *old);

#define errno (*__errno_location())
#define NULL ((void *)0)

#define EINTR 4
#define EIO 5
#define ECHILD 10
#define EAGAIN 11
#define EINVAL 22
#define E2BIG 7
#define EPIPE 32
#define ENAMETOOLONG 36
#define EPROTO 71

#define O_RDONLY 00
#define O_WRONLY 01
#define O_RDWR 02
#define O_NONBLOCK 04000
#define O_CLOEXEC 02000000

#define AF_UNIX 1
#define AF_NETLINK 16
#define SOCK_RAW 3
#define SOCK_SEQPACKET 5
#define SOCK_CLOEXEC 02000000
#define NETLINK_ROUTE 0
#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define MSG_CMSG_CLOEXEC 0x40000000
#define MSG_NOSIGNAL 0x4000

#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWNET 0x40000000

#define PR_SET_PDEATHSIG 1
#define SIGKILL 9
#define SIGTERM 15
#define SIG_DFL ((void *)0)
#define SIG_SETMASK 2
#define WNOHANG 1

#define TUNSETIFF 0x400454caUL
#define IFF_TAP 0x0002
#define IFF_NO_PI 0x1000
#define IFF_VNET_HDR 0x4000
#define IFNAMSIZ 16
#define NS_GET_USERNS 0xb701UL

#define SYS_pidfd_open 434
#define SYS_close_range 436

/* ns_agent_start() flags, mirrored in ns.ts */
#define NSF_JOIN 0x01         /* setns() into userns/netns paths instead of unshare() */
#define NSF_TAP 0x02          /* open a tap device named ifname */
#define NSF_VNET_HDR 0x04     /* ... with IFF_VNET_HDR */
#define NSF_TAP_NONBLOCK 0x08 /* ... with O_NONBLOCK */
#define NSF_UTS 0x10          /* also unshare the UTS namespace, hostname pasta-<host> */
#define NSF_USERNS_OWNER 0x20 /* join: no userns path, use the netns owner (NS_GET_USERNS) */
#define NSF_NETNS_ONLY 0x40   /* join: do not enter any user namespace */

/* ns_spawn() join mask, mirrored in ns.ts */
#define NSJ_USER 0x01
#define NSJ_NET 0x02
#define NSJ_UTS 0x04

/* Steps that can fail, mirrored (by number) in ns.ts for the error message */
enum ns_step {
	STEP_OK = 0,
	STEP_SOCKETPAIR,
	STEP_FORK,
	STEP_AGENT, /* agent vanished before reporting */
	STEP_PDEATHSIG,
	STEP_UNSHARE,
	STEP_SETGROUPS,
	STEP_UID_MAP,
	STEP_GID_MAP,
	STEP_SETHOSTNAME,
	STEP_OPEN_USERNS,
	STEP_OPEN_NETNS,
	STEP_GET_USERNS,
	STEP_SETNS_USER,
	STEP_SETNS_NET,
	STEP_OPEN_TUN,
	STEP_TUNSETIFF,
	STEP_NETLINK,
	STEP_SEND,
	STEP_PIPE,
	STEP_OPEN_NS,
	STEP_SETNS_UTS,
	STEP_SETRESGID,
	STEP_SETRESUID,
	STEP_EXEC,
	STEP_ARGS,
};

/* Agent requests, mirrored in ns.ts */
enum ns_op {
	OP_SOCKET = 1, /* a = domain, b = type, c = protocol -> fd */
	OP_OPEN = 2,   /* path, read-only -> fd */
	OP_WRITE = 3,  /* path, data -> 0 */
	OP_EXIT = 4,
};

struct iovec {
	void *base;
	size_t len;
};

struct msghdr {
	void *name;
	unsigned namelen;
	struct iovec *iov;
	size_t iovlen;
	void *control;
	size_t controllen;
	int flags;
};

/* struct cmsghdr followed by room for up to 4 file descriptors */
struct cmsg_fds {
	size_t len;
	int level;
	int type;
	int fds[4];
};
#define CMSG_HDR_LEN 16

struct ifreq_flags {
	char name[IFNAMSIZ];
	short flags;
	char pad[22];
};

#define NS_PATH_MAX 4096
#define NS_DATA_MAX 4096

struct ns_req {
	int op;
	int a, b, c;
	int pathlen; /* including the terminating NUL */
	int datalen;
	char buf[NS_PATH_MAX + NS_DATA_MAX];
};
#define NS_REQ_HDR 24

struct ns_status {
	int step;
	int err;
};

static size_t ns_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* Returns 1 if the first len bytes of a and b are equal, 0 otherwise */
static int ns_memeq(const char *a, const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (a[i] != b[i])
			return 0;
	}
	return 1;
}

/* Returns 0 once all of buf is written to path, -1 with errno set otherwise */
static int write_file(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	if (n < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	if ((size_t)n != len) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Formats "0 <id> 1\n" into buf; returns the length */
static size_t fmt_map(char *buf, unsigned id)
{
	char digits[12];
	size_t n = 0, i = 0;

	do {
		digits[i++] = (char)('0' + id % 10);
		id /= 10;
	} while (id);
	buf[n++] = '0';
	buf[n++] = ' ';
	while (i)
		buf[n++] = digits[--i];
	buf[n++] = ' ';
	buf[n++] = '1';
	buf[n++] = '\n';
	return n;
}

/* Returns the bytes sent, or -1 with errno set: sends data and up to 4 fds */
static ssize_t send_fds(int sock, const void *data, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { (void *)data, len };
	struct cmsg_fds cm;
	struct msghdr mh = { NULL, 0, &iov, 1, NULL, 0, 0 };
	int i;

	if (nfds > 0) {
		cm.len = CMSG_HDR_LEN + sizeof(int) * (size_t)nfds;
		cm.level = SOL_SOCKET;
		cm.type = SCM_RIGHTS;
		for (i = 0; i < nfds; i++)
			cm.fds[i] = fds[i];
		mh.control = &cm;
		mh.controllen = CMSG_HDR_LEN + ((sizeof(int) * (size_t)nfds + 7) & ~(size_t)7);
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/* Returns the bytes received (0 on EOF), or -1 with errno set; fds get -1 where none came */
static ssize_t recv_fds(int sock, void *data, size_t len, int *fds, int nfds)
{
	struct iovec iov = { data, len };
	struct cmsg_fds cm;
	struct msghdr mh = { NULL, 0, &iov, 1, &cm, sizeof(cm), 0 };
	ssize_t n;
	int i, got = 0;

	for (i = 0; i < nfds; i++)
		fds[i] = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return n;
	if (mh.controllen >= CMSG_HDR_LEN && cm.level == SOL_SOCKET && cm.type == SCM_RIGHTS)
		got = (int)((cm.len - CMSG_HDR_LEN) / sizeof(int));
	for (i = 0; i < got && i < 4; i++) {
		if (i < nfds)
			fds[i] = cm.fds[i];
		else
			close(cm.fds[i]);
	}
	return n;
}

/* Reports a failed step to the parent and ends the agent */
static void agent_fail(int sock, int step)
{
	struct ns_status st;

	st.step = step;
	st.err = errno;
	send_fds(sock, &st, sizeof(st), NULL, 0);
	_exit(1);
}

/* Serves requests until the socketpair closes or OP_EXIT arrives; never returns */
static void agent_serve(int sock)
{
	static struct ns_req req;
	ssize_t n;
	int res, fd;

	for (;;) {
		n = recv_fds(sock, &req, sizeof(req), NULL, 0);
		if (n <= 0)
			_exit(0);
		fd = -1;
		if (n < NS_REQ_HDR || req.pathlen < 0 || req.datalen < 0 ||
		    req.pathlen > NS_PATH_MAX || req.datalen > NS_DATA_MAX ||
		    (size_t)n < NS_REQ_HDR + (size_t)req.pathlen + (size_t)req.datalen ||
		    (req.pathlen && req.buf[req.pathlen - 1])) {
			res = -EPROTO;
		} else if (req.op == OP_SOCKET) {
			fd = socket(req.a, req.b | SOCK_CLOEXEC, req.c);
			res = fd < 0 ? -errno : 0;
		} else if (req.op == OP_OPEN && req.pathlen) {
			fd = open(req.buf, O_RDONLY | O_CLOEXEC);
			res = fd < 0 ? -errno : 0;
		} else if (req.op == OP_WRITE && req.pathlen) {
			res = write_file(req.buf, req.buf + req.pathlen, (size_t)req.datalen) ? -errno : 0;
		} else if (req.op == OP_EXIT) {
			_exit(0);
		} else {
			res = -EINVAL;
		}
		if (send_fds(sock, &res, sizeof(res), &fd, fd >= 0 ? 1 : 0) < 0)
			_exit(0);
		if (fd >= 0)
			close(fd);
	}
}

/* Enters the namespaces given by paths, as ns_agent_start() describes; fails through agent_fail */
static void agent_join(int sock, int flags, const char *userns, const char *netns)
{
	char self[64], target[64];
	char fdpath[32] = "/proc/self/fd/";
	ssize_t a, b;
	int ufd = -1, nfd, i, n;

	nfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		agent_fail(sock, STEP_OPEN_NETNS);

	if (!(flags & NSF_NETNS_ONLY)) {
		if (flags & NSF_USERNS_OWNER) {
			ufd = ioctl(nfd, NS_GET_USERNS);
			if (ufd < 0)
				agent_fail(sock, STEP_GET_USERNS);
		} else {
			ufd = open(userns, O_RDONLY | O_CLOEXEC);
			if (ufd < 0)
				agent_fail(sock, STEP_OPEN_USERNS);
		}

		/* setns() into the user namespace we are already in fails with EINVAL */
		n = ufd;
		i = 14;
		{
			char d[12];
			int k = 0;

			do {
				d[k++] = (char)('0' + n % 10);
				n /= 10;
			} while (n);
			while (k)
				fdpath[i++] = d[--k];
			fdpath[i] = 0;
		}
		a = readlink("/proc/self/ns/user", self, sizeof(self));
		b = readlink(fdpath, target, sizeof(target));
		if (a <= 0 || a != b || a >= (ssize_t)sizeof(self) ||
		    !ns_memeq(self, target, (size_t)a)) {
			if (setns(ufd, CLONE_NEWUSER))
				agent_fail(sock, STEP_SETNS_USER);
		}
		close(ufd);
	}

	if (setns(nfd, CLONE_NEWNET))
		agent_fail(sock, STEP_SETNS_NET);
	close(nfd);
}

/* Creates a user (and UTS) and network namespace, mapping uid/gid to 0; fails through agent_fail */
static void agent_create(int sock, int flags, unsigned uid, unsigned gid)
{
	char map[32], host[64 + 7] = "pasta-";
	size_t n;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNET | ((flags & NSF_UTS) ? CLONE_NEWUTS : 0)))
		agent_fail(sock, STEP_UNSHARE);
	if (write_file("/proc/self/setgroups", "deny", 4))
		agent_fail(sock, STEP_SETGROUPS);
	n = fmt_map(map, uid);
	if (write_file("/proc/self/uid_map", map, n))
		agent_fail(sock, STEP_UID_MAP);
	n = fmt_map(map, gid);
	if (write_file("/proc/self/gid_map", map, n))
		agent_fail(sock, STEP_GID_MAP);

	if (flags & NSF_UTS) {
		host[6 + 63] = 0;
		if (gethostname(host + 6, 63) || sethostname(host, ns_strlen(host)))
			agent_fail(sock, STEP_SETHOSTNAME);
	}
}

/**
 * ns_agent_start() - fork the namespace agent and collect its file descriptors
 * @flags:	NSF_* flags
 * @ifname:	tap interface name (NSF_TAP), at most 15 bytes
 * @userns:	user namespace path to join (NSF_JOIN without NSF_USERNS_OWNER or NSF_NETNS_ONLY)
 * @netns:	network namespace path to join (NSF_JOIN)
 * @uid:	our uid, mapped to 0 in a new user namespace
 * @gid:	our gid, likewise
 * @out:	out[0] agent pid, [1] our end of the socketpair, [2] tap fd, [3] netlink fd,
 *		[4] failed step, [5] errno of the failed step
 *
 * Return: 0 on success, -1 on failure with out[4] and out[5] set and no process or fd left
 */
int ns_agent_start(int flags, const char *ifname, const char *userns, const char *netns,
		   unsigned uid, unsigned gid, int *out)
{
	struct ns_status st;
	int sv[2], fds[2], pid, parent, status, e;
	ssize_t n;

	out[0] = out[1] = out[2] = out[3] = -1;
	out[4] = out[5] = 0;

	if ((flags & NSF_TAP) && (!ifname || ns_strlen(ifname) >= IFNAMSIZ)) {
		out[4] = STEP_TUNSETIFF;
		out[5] = ENAMETOOLONG;
		return -1;
	}

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		out[4] = STEP_SOCKETPAIR;
		out[5] = errno;
		return -1;
	}

	parent = getpid();
	pid = fork();
	if (pid < 0) {
		out[4] = STEP_FORK;
		out[5] = errno;
		close(sv[0]);
		close(sv[1]);
		return -1;
	}

	if (pid == 0) {
		int sock = sv[1], tap = -1, nl, send[2], k = 0;

		/* Hold nothing of the parent's open: only our end of the socketpair */
		syscall(SYS_close_range, 3, sock - 1, 0);
		syscall(SYS_close_range, sock + 1, ~0U, 0);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			agent_fail(sock, STEP_PDEATHSIG);

		/* The agent never prints: don't hold the caller's terminal or pipes open */
		{
			int null = open("/dev/null", O_RDWR | O_CLOEXEC);

			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
				close(null);
			}
		}

		if (flags & NSF_JOIN)
			agent_join(sock, flags, userns, netns);
		else
			agent_create(sock, flags, uid, gid);

		if (flags & NSF_TAP) {
			struct ifreq_flags ifr;
			size_t i;

			for (i = 0; i < sizeof(ifr); i++)
				((char *)&ifr)[i] = 0;
			for (i = 0; ifname[i]; i++)
				ifr.name[i] = ifname[i];
			ifr.flags = IFF_TAP | IFF_NO_PI | ((flags & NSF_VNET_HDR) ? IFF_VNET_HDR : 0);

			tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC |
				   ((flags & NSF_TAP_NONBLOCK) ? O_NONBLOCK : 0));
			if (tap < 0)
				agent_fail(sock, STEP_OPEN_TUN);
			if (ioctl(tap, TUNSETIFF, &ifr))
				agent_fail(sock, STEP_TUNSETIFF);
			send[k++] = tap;
		}

		nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
		if (nl < 0)
			agent_fail(sock, STEP_NETLINK);
		send[k++] = nl;

		st.step = STEP_OK;
		st.err = 0;
		if (send_fds(sock, &st, sizeof(st), send, k) < 0)
			_exit(1);
		if (tap >= 0)
			close(tap);
		close(nl);
		agent_serve(sock);
	}

	close(sv[1]);
	n = recv_fds(sv[0], &st, sizeof(st), fds, 2);
	if (n != (ssize_t)sizeof(st) || st.step != STEP_OK) {
		e = errno;
		if (n == (ssize_t)sizeof(st)) {
			out[4] = st.step;
			out[5] = st.err;
		} else {
			out[4] = STEP_AGENT;
			out[5] = n < 0 ? e : EPIPE;
			kill(pid, SIGKILL);
		}
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		close(sv[0]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return -1;
	}

	out[0] = pid;
	out[1] = sv[0];
	if (flags & NSF_TAP) {
		out[2] = fds[0];
		out[3] = fds[1];
	} else {
		out[3] = fds[0];
	}
	return 0;
}

/**
 * ns_agent_call() - one request to the agent
 * @sock:	our end of the agent's socketpair
 * @op:		OP_SOCKET, OP_OPEN, OP_WRITE or OP_EXIT
 * @a, @b, @c:	arguments of OP_SOCKET
 * @path:	NUL-terminated path for OP_OPEN and OP_WRITE, or NULL
 * @data:	bytes to write for OP_WRITE, or NULL
 * @datalen:	length of @data
 *
 * Return: a file descriptor (OP_SOCKET, OP_OPEN), 0 (OP_WRITE, OP_EXIT), or -errno
 */
int ns_agent_call(int sock, int op, int a, int b, int c, const char *path,
		  const char *data, int datalen)
{
	static struct ns_req req;
	size_t pathlen = path ? ns_strlen(path) + 1 : 0, i;
	int res, fd;
	ssize_t n;

	if (pathlen > NS_PATH_MAX || datalen < 0 || datalen > NS_DATA_MAX)
		return -E2BIG;
	req.op = op;
	req.a = a;
	req.b = b;
	req.c = c;
	req.pathlen = (int)pathlen;
	req.datalen = datalen;
	for (i = 0; i < pathlen; i++)
		req.buf[i] = path[i];
	for (i = 0; i < (size_t)datalen; i++)
		req.buf[pathlen + i] = data[i];

	if (send_fds(sock, &req, NS_REQ_HDR + pathlen + (size_t)datalen, NULL, 0) < 0)
		return -errno;
	if (op == OP_EXIT)
		return 0;
	n = recv_fds(sock, &res, sizeof(res), &fd, 1);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(res)) {
		if (fd >= 0)
			close(fd);
		return -EPIPE;
	}
	if (res < 0) {
		if (fd >= 0)
			close(fd);
		return res;
	}
	if (op == OP_SOCKET || op == OP_OPEN)
		return fd >= 0 ? fd : -EPROTO;
	return res;
}

/* Formats "/proc/<pid>/ns/<name>" into buf */
static void ns_proc_path(char *buf, int pid, const char *name)
{
	const char *pre = "/proc/";
	char d[12];
	int i = 0, k = 0;

	while (*pre)
		buf[i++] = *pre++;
	do {
		d[k++] = (char)('0' + pid % 10);
		pid /= 10;
	} while (pid);
	while (k)
		buf[i++] = d[--k];
	pre = "/ns/";
	while (*pre)
		buf[i++] = *pre++;
	while (*name)
		buf[i++] = *name++;
	buf[i] = 0;
}

/* Reports a failed step over the pipe and ends the spawned child with status 127 */
static void spawn_fail(int fd, int step)
{
	struct ns_status st;

	st.step = step;
	st.err = errno;
	write(fd, &st, sizeof(st));
	_exit(127);
}

#define NS_ARGV_MAX 256

/**
 * ns_spawn() - fork a command into the agent's namespaces
 * @agent:	agent pid
 * @join:	NSJ_* mask: which of the agent's namespaces to enter
 * @args:	argv as NUL-terminated strings, back to back
 * @argslen:	length of @args in bytes
 * @out:	out[0] failed step, out[1] its errno, both 0 if exec succeeded
 *
 * The command becomes uid/gid 0 when it enters the user namespace, has default signal
 * dispositions and an empty signal mask, and is our direct child: reap it with waitpid(),
 * or a pidfd. A failure after fork still leaves a child to reap, with exit status 127.
 *
 * Return: pid of the child, or -errno if none was started
 */
int ns_spawn(int agent, int join, const char *args, int argslen, int *out)
{
	char *argv[NS_ARGV_MAX];
	char upath[48], npath[48], tpath[48];
	struct ns_status st;
	int p[2], argc = 0, i, pid;
	ssize_t n;

	out[0] = out[1] = 0;
	for (i = 0; i < argslen && argc < NS_ARGV_MAX - 1; argc++) {
		argv[argc] = (char *)args + i;
		while (i < argslen && args[i])
			i++;
		if (i == argslen)
			return -EINVAL; /* last string not terminated */
		i++;
	}
	if (!argc || i < argslen) {
		out[0] = STEP_ARGS;
		out[1] = argc ? E2BIG : EINVAL;
		return -out[1];
	}
	argv[argc] = NULL;

	ns_proc_path(upath, agent, "user");
	ns_proc_path(npath, agent, "net");
	ns_proc_path(tpath, agent, "uts");

	if (pipe2(p, O_CLOEXEC)) {
		out[0] = STEP_PIPE;
		out[1] = errno;
		return -out[1];
	}

	pid = fork();
	if (pid < 0) {
		out[0] = STEP_FORK;
		out[1] = errno;
		close(p[0]);
		close(p[1]);
		return -out[1];
	}

	if (pid == 0) {
		static const char zero_set[128];
		int ufd = -1, nfd = -1, tfd = -1, sig;

		close(p[0]);
		/* As upstream: the command gets SIGTERM if pasta goes away */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (((join & NSJ_USER) && (ufd = open(upath, O_RDONLY | O_CLOEXEC)) < 0) ||
		    ((join & NSJ_NET) && (nfd = open(npath, O_RDONLY | O_CLOEXEC)) < 0) ||
		    ((join & NSJ_UTS) && (tfd = open(tpath, O_RDONLY | O_CLOEXEC)) < 0))
			spawn_fail(p[1], STEP_OPEN_NS);
		if (ufd >= 0 && setns(ufd, CLONE_NEWUSER))
			spawn_fail(p[1], STEP_SETNS_USER);
		if (nfd >= 0 && setns(nfd, CLONE_NEWNET))
			spawn_fail(p[1], STEP_SETNS_NET);
		if (tfd >= 0 && setns(tfd, CLONE_NEWUTS))
			spawn_fail(p[1], STEP_SETNS_UTS);
		if (ufd >= 0) {
			if (setresgid(0, 0, 0))
				spawn_fail(p[1], STEP_SETRESGID);
			if (setresuid(0, 0, 0))
				spawn_fail(p[1], STEP_SETRESUID);
		}

		for (sig = 1; sig < 65; sig++)
			signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, zero_set, NULL);

		execvp(argv[0], argv);
		spawn_fail(p[1], STEP_EXEC);
	}

	close(p[1]);
	do
		n = read(p[0], &st, sizeof(st));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == (ssize_t)sizeof(st)) {
		out[0] = st.step;
		out[1] = st.err;
	}
	return pid;
}

/**
 * ns_wait() - reap a child
 * @pid:	child to reap
 * @nohang:	non-zero to return -EAGAIN instead of blocking
 *
 * Return: exit status, 128 + signal number if killed, -EAGAIN if still running, or -errno
 */
int ns_wait(int pid, int nohang)
{
	int status = 0, r;

	do
		r = waitpid(pid, &status, nohang ? WNOHANG : 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -EAGAIN;
	if ((status & 0x7f) == 0)
		return (status >> 8) & 0xff;
	return 128 + (status & 0x7f);
}

/* Returns a pidfd for pid, or -errno */
int ns_pidfd_open(int pid)
{
	long r = syscall(SYS_pidfd_open, pid, 0);

	return r < 0 ? -errno : (int)r;
}

/* Returns the C library's message for errnum */
const char *ns_strerror(int errnum)
{
	return strerror(errnum);
}
