// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_rr.c - request/response latency: 1-byte ping-pong over one TCP connection
//
// Built by perf/run.ts at run time (gcc -O2 into a temporary directory); a
// small stand-in for neper's tcp_rr, which is not packaged.
//
//   tcp_rr server PORT          accept connections one after the other, echo
//                               each byte back; print the peer address of
//                               every connection ("peer ADDR") on stdout
//   tcp_rr client ADDR PORT S   connect, send 1 byte, wait for 1 byte back,
//                               repeat for S seconds (S may be fractional, 0
//                               for one transaction); print
//                               {"transactions":N,"seconds":T} on stdout
//
// TCP_NODELAY on both ends, so every transaction is one segment each way.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int server(int port)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int one = 1, zero = 0, s = socket(AF_INET6, SOCK_STREAM, 0);

	if (s < 0) { perror("socket"); return 1; }
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 16)) {
		perror("bind/listen");
		return 1;
	}
	printf("listening %d\n", port);
	fflush(stdout);
	for (;;) {
		struct sockaddr_in6 peer;
		socklen_t len = sizeof(peer);
		char name[INET6_ADDRSTRLEN] = "?";
		char b;
		int c = accept(s, (struct sockaddr *)&peer, &len);

		if (c < 0)
			continue;
		nodelay(c);
		inet_ntop(AF_INET6, &peer.sin6_addr, name, sizeof(name));
		printf("peer %s\n", name);
		fflush(stdout);
		while (read(c, &b, 1) == 1)
			if (write(c, &b, 1) != 1)
				break;
		close(c);
	}
}

static int client(const char *addr, const char *port, double seconds)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	unsigned long n = 0;
	double start, end;
	char b = 'x';
	int s;

	if (getaddrinfo(addr, port, &hints, &ai)) { fprintf(stderr, "bad address\n"); return 1; }
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen)) { perror("connect"); return 1; }
	nodelay(s);
	start = now_s();
	end = start + seconds;
	do {
		if (write(s, &b, 1) != 1 || read(s, &b, 1) != 1) { perror("transaction"); return 1; }
		n++;
		/* Reading the clock costs far less than a transaction; check it every 16. */
	} while ((n & 15) || now_s() < end);
	printf("{\"transactions\":%lu,\"seconds\":%.6f}\n", n, now_s() - start);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "client"))
		return client(argv[2], argv[3], atof(argv[4]));
	fprintf(stderr, "usage: tcp_rr server PORT | tcp_rr client ADDR PORT SECONDS\n");
	return 2;
}
