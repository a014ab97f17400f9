// SPDX-License-Identifier: GPL-2.0-or-later
// soak.c - traffic for the memory soak (perf/soak.ts): long bulk transfers and connection churn
//
// Built by perf/soak.ts at run time (gcc -O2 into a temporary directory).
//
//   soak bulk-server PORT
//       accepts connections (one forked child each); a client first sends a 9-byte header,
//       'S' or 'R' and a big-endian u64 count. 'S': the client sends, the server reads to EOF
//       and answers with the number of bytes it received (u64, big-endian). 'R': the server
//       sends `count` bytes, then closes.
//   soak bulk-client ADDR PORT send|recv BYTES MAX_SECONDS
//       one transfer of BYTES through one connection; stops early after MAX_SECONDS. Prints
//       "progress N" (bytes so far) about every 250 ms, then one JSON line:
//       {"bytes":N,"seconds":T,"complete":true|false,"error":"..."}; for "send", N is what the
//       server says it received. Exit status 0 if complete.
//   soak crr-server PORT
//       epoll loop: for each accepted connection, reads the request (one read), writes it back
//       and closes: the server closes first, so TIME_WAIT stays on the server's side.
//   soak crr-client ADDR PORT COUNT CONCURRENCY MAX_SECONDS
//       opens COUNT connections, at most CONCURRENCY at a time: connect, send 16 bytes, read
//       them back, read EOF, close. A connection that fails, or is not done after 10 s, is
//       counted as failed and closed with SO_LINGER 0. Prints "progress DONE FAILED" about
//       every 250 ms, then {"done":N,"failed":N,"seconds":T,"complete":bool,"errors":{...}}.
//
// Both clients run in the namespace under test, the servers on the host's loopback.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define PROGRESS_S 0.25
#define CONN_TIMEOUT_S 10.0

static char buf[CHUNK];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int listener(int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int one = 1, zero = 0, s = socket(AF_INET6, SOCK_STREAM, 0);

	if (s < 0) { perror("socket"); exit(1); }
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4096)) {
		perror("bind/listen");
		exit(1);
	}
	printf("listening %d\n", port);
	fflush(stdout);
	return s;
}

static int full_read(int fd, void *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)p + got, len - got);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		got += n;
	}
	return 0;
}

static int full_write(int fd, const void *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)p + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += n;
	}
	return 0;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void bulk_serve(int c)
{
	unsigned char hdr[9], out[8];
	uint64_t count, n = 0;
	ssize_t r;

	if (full_read(c, hdr, sizeof(hdr)))
		return;
	count = get_u64(hdr + 1);
	if (hdr[0] == 'S') {
		while ((r = read(c, buf, sizeof(buf))) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return;
			}
			n += r;
		}
		put_u64(out, n);
		full_write(c, out, sizeof(out));
	} else if (hdr[0] == 'R') {
		while (n < count) {
			size_t len = count - n < sizeof(buf) ? count - n : sizeof(buf);

			r = write(c, buf, len);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return;
			}
			n += r;
		}
	}
}

static int bulk_server(int port)
{
	int s = listener(port);

	signal(SIGCHLD, SIG_IGN);	/* children are reaped by the kernel */
	for (;;) {
		int c = accept(s, NULL, NULL);

		if (c < 0)
			continue;
		if (fork() == 0) {
			close(s);
			bulk_serve(c);
			_exit(0);
		}
		close(c);
	}
}

static int connect_to(const char *addr, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int s;

	if (getaddrinfo(addr, port, &hints, &ai))
		return -1;
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen)) {
		int e = errno;

		if (s >= 0)
			close(s);
		freeaddrinfo(ai);
		errno = e;
		return -1;
	}
	freeaddrinfo(ai);
	return s;
}

static void bulk_result(uint64_t bytes, double seconds, int complete, const char *error)
{
	printf("{\"bytes\":%llu,\"seconds\":%.3f,\"complete\":%s", (unsigned long long)bytes, seconds,
	       complete ? "true" : "false");
	if (error)
		printf(",\"error\":\"%s\"", error);
	printf("}\n");
	fflush(stdout);
}

static int bulk_client(const char *addr, const char *port, const char *mode, uint64_t bytes, double max_s)
{
	int sending = !strcmp(mode, "send");
	unsigned char hdr[9], in[8];
	double start = now_s(), next = start + PROGRESS_S;
	uint64_t n = 0;
	int s = connect_to(addr, port);

	if (s < 0) {
		bulk_result(0, now_s() - start, 0, strerror(errno));
		return 1;
	}
	hdr[0] = sending ? 'S' : 'R';
	put_u64(hdr + 1, bytes);
	if (full_write(s, hdr, sizeof(hdr))) {
		bulk_result(0, now_s() - start, 0, strerror(errno));
		return 1;
	}
	fcntl(s, F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p = { .fd = s, .events = sending ? POLLOUT : POLLIN };
		double t = now_s();
		ssize_t r;

		if (t >= next) {
			printf("progress %llu\n", (unsigned long long)n);
			fflush(stdout);
			next = t + PROGRESS_S;
		}
		if (t - start > max_s) {
			bulk_result(n, t - start, 0, "time limit");
			return 1;
		}
		if (sending && n >= bytes)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (sending) {
			size_t len = bytes - n < sizeof(buf) ? bytes - n : sizeof(buf);

			r = write(s, buf, len);
		} else {
			r = read(s, buf, sizeof(buf));
			if (r == 0)
				break;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			bulk_result(n, now_s() - start, 0, strerror(errno));
			return 1;
		}
		n += r;
	}
	if (sending) {
		/* Wait for the server's count of what it received. */
		fcntl(s, F_SETFL, 0);
		shutdown(s, SHUT_WR);
		if (full_read(s, in, sizeof(in))) {
			bulk_result(n, now_s() - start, 0, "no count from the server");
			return 1;
		}
		n = get_u64(in);
	}
	close(s);
	bulk_result(n, now_s() - start, n == bytes, n == bytes ? NULL : "short transfer");
	return n == bytes ? 0 : 1;
}

static int crr_server(int port)
{
	struct epoll_event ev, events[256];
	int s = listener(port), ep = epoll_create1(0);

	fcntl(s, F_SETFL, O_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.fd = s;
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	for (;;) {
		int n = epoll_wait(ep, events, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == s) {
				int c;

				while ((c = accept4(s, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					ev.events = EPOLLIN | EPOLLRDHUP;
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			ssize_t r = read(fd, buf, 64);

			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0)
				full_write(fd, buf, r);	/* fits the send buffer of a fresh socket */
			close(fd);			/* server closes first: TIME_WAIT here */
		}
	}
	return 0;
}

enum crr_state { FREE, CONNECTING, WAIT_REPLY };

struct crr_conn {
	int fd;
	enum crr_state state;
	double started;
	int got;
	char req[16];
};

#define NERR 8
static const char *err_names[NERR];
static unsigned long err_counts[NERR];

static void count_error(const char *name)
{
	for (int i = 0; i < NERR; i++) {
		if (!err_names[i])
			err_names[i] = name;
		if (err_names[i] == name || !strcmp(err_names[i], name)) {
			err_counts[i]++;
			return;
		}
	}
}

static const char *errno_name(int e)
{
	switch (e) {
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EPIPE: return "EPIPE";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	default: return "other";
	}
}

static int crr_client(const char *addr, const char *port, unsigned long count, int conc, double max_s)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct crr_conn *c = calloc(conc, sizeof(*c));
	struct epoll_event ev, events[256];
	unsigned long started = 0, done = 0, failed = 0, seq = 0;
	double start = now_s(), next = start + PROGRESS_S, next_scan = start + 0.1;
	int ep = epoll_create1(0), active = 0, capped = 0;

	if (getaddrinfo(addr, port, &hints, &ai)) { fprintf(stderr, "bad address\n"); return 2; }

	for (;;) {
		double t = now_s();

		/* Start connections up to the concurrency bound. */
		for (int i = 0; i < conc && started < count && !capped; i++) {
			int fd;

			if (c[i].state != FREE)
				continue;
			fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
			started++;
			if (fd < 0) { count_error(errno_name(errno)); failed++; continue; }
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
				count_error(errno_name(errno));
				failed++;
				close(fd);
				continue;
			}
			c[i] = (struct crr_conn){ .fd = fd, .state = CONNECTING, .started = t };
			snprintf(c[i].req, sizeof(c[i].req), "req%012lu", seq++ % 1000000000000UL);
			ev.events = EPOLLOUT;
			ev.data.u32 = i;
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			active++;
		}
		if (t >= next) {
			printf("progress %lu %lu\n", done, failed);
			fflush(stdout);
			next = t + PROGRESS_S;
		}
		if (!capped && t - start > max_s)
			capped = 1;
		if (active == 0 && (started >= count || capped))
			break;

		int n = epoll_wait(ep, events, 256, 50);

		for (int k = 0; k < n; k++) {
			int i = events[k].data.u32;
			struct crr_conn *x = &c[i];
			const char *err = NULL;

			if (x->state == CONNECTING) {
				int e = 0;
				socklen_t len = sizeof(e);

				getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &e, &len);
				if (e) {
					err = errno_name(e);
				} else if (write(x->fd, x->req, sizeof(x->req)) != sizeof(x->req)) {
					err = errno_name(errno);
				} else {
					x->state = WAIT_REPLY;
					ev.events = EPOLLIN;
					ev.data.u32 = i;
					epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
					continue;
				}
			} else {
				char in[64];
				ssize_t r;

				while ((r = read(x->fd, in, sizeof(in))) > 0) {
					if (x->got + r > (ssize_t)sizeof(x->req) || memcmp(in, x->req + x->got, r)) {
						err = "bad reply";
						break;
					}
					x->got += r;
				}
				if (!err && r < 0 && errno == EAGAIN)
					continue;	/* more to come */
				if (!err && r < 0)
					err = errno_name(errno);
				if (!err && x->got != sizeof(x->req))
					err = "short reply";
				if (!err) {
					/* Reply complete and EOF seen: the server closed first. */
					close(x->fd);
					x->state = FREE;
					active--;
					done++;
					continue;
				}
			}
			count_error(err);
			failed++;
			{
				struct linger l = { 1, 0 };

				setsockopt(x->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			}
			close(x->fd);
			x->state = FREE;
			active--;
		}

		if (t >= next_scan) {
			next_scan = t + 0.1;
			for (int i = 0; i < conc; i++) {
				struct linger l = { 1, 0 };

				if (c[i].state == FREE || t - c[i].started < CONN_TIMEOUT_S)
					continue;
				count_error("timeout");
				failed++;
				setsockopt(c[i].fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
				close(c[i].fd);
				c[i].state = FREE;
				active--;
			}
		}
	}

	printf("{\"done\":%lu,\"failed\":%lu,\"seconds\":%.3f,\"complete\":%s,\"errors\":{", done, failed,
	       now_s() - start, done == count ? "true" : "false");
	for (int i = 0; i < NERR && err_names[i]; i++)
		printf("%s\"%s\":%lu", i ? "," : "", err_names[i], err_counts[i]);
	printf("}}\n");
	fflush(stdout);
	return done == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "bulk-server"))
		return bulk_server(atoi(argv[2]));
	if (argc == 7 && !strcmp(argv[1], "bulk-client"))
		return bulk_client(argv[2], argv[3], argv[4], strtoull(argv[5], NULL, 10), atof(argv[6]));
	if (argc == 3 && !strcmp(argv[1], "crr-server"))
		return crr_server(atoi(argv[2]));
	if (argc == 7 && !strcmp(argv[1], "crr-client"))
		return crr_client(argv[2], argv[3], strtoul(argv[4], NULL, 10), atoi(argv[5]), atof(argv[6]));
	fprintf(stderr, "usage: soak bulk-server PORT | soak bulk-client ADDR PORT send|recv BYTES MAX_S\n"
			"       soak crr-server PORT | soak crr-client ADDR PORT COUNT CONCURRENCY MAX_S\n");
	return 2;
}
