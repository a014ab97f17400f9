#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# _l4tool.py - TCP and UDP servers and clients for the e2e tests of pasta's L4 translation (see _l4.ts)
#
# Every result is one JSON object per line on stdout. Servers create the file READY once they
# listen, so a test can wait for it. Data sent is always a prefix of DATA, a file of random bytes
# the test made: the test knows its sha256, so whatever end receives reports the sha256 and byte
# count of what it got, and the test compares.
#
#   tcp-server ADDR PORT DATA READY   one thread per connection; a connection starts with one line:
#       PUT n       read exactly n bytes, answer "n sha256\n", close
#       PUTSLOW n chunk ms   like PUT, reading `chunk` bytes every `ms` milliseconds
#       PUTEOF      read to end of file (the client half-closed), answer "n sha256\n", close
#       GET n       send the first n bytes of DATA, close
#       GETTHENPUT n tag   send n bytes, half-close, read to end of file, print
#                   {"server":"GETTHENPUT","tag":tag,"bytes":...,"sha256":...}
#       ECHO n      send back the n bytes that follow, close
#       RST         close at once with SO_LINGER 0 (the client must see a reset)
#       EXPECTRST   read until end of file or error; print {"server":"EXPECTRST","result":...}
#       DRAIN k     read k bytes, then close (with whatever else the client sends unread)
#   udp-echo ADDR PORT READY          send every datagram back to where it came from
#   udp-burst ADDR PORT READY         on "BURST seed size:count ...", send back datagrams of those sizes
#                                     (burst_datagrams()), each group of more than one datagram in one
#                                     sendto() with UDP_SEGMENT, so that they arrive queued together
#   udp-record ADDR PORT READY        remember every datagram; on "REPORT", send back the length and
#                                     sha256 of each one since the last report, as JSON, and forget them
#   client OPS                        OPS: JSON list of operations, see run_op()

import asyncio
import hashlib
import json
import os
import random
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20


def out(**kw):
    print(json.dumps(kw), flush=True)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def read_line(sock):
    line = b""
    while not line.endswith(b"\n"):
        b = sock.recv(1)
        if not b:
            break
        line += b
    return line.decode().strip()


def recv_hash(sock, limit=None):
    """Reads up to `limit` bytes (or to end of file); returns (count, sha256 hex)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    n = 0
    while limit is None or n < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - n)
        k = sock.recv_into(mv[:want])
        if k == 0:
            break
        h.update(mv[:k])
        n += k
    return n, h.hexdigest()


def send_data(sock, path, n):
    with open(path, "rb") as f:
        sent = sock.sendfile(f, 0, n)
    if sent != n:
        raise RuntimeError(f"sendfile sent {sent} of {n} bytes")


def linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def listen_sock(kind, addr, port):
    s = socket.socket(family(addr), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family(addr) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port))
    return s


def ready(path):
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)


# Servers ---------------------------------------------------------------------------------------


def serve_conn(conn, data):
    try:
        cmd = read_line(conn).split()
        if not cmd:
            return
        if cmd[0] == "PUT":
            n, sha = recv_hash(conn, int(cmd[1]))
            conn.sendall(f"{n} {sha}\n".encode())
        elif cmd[0] == "PUTSLOW":
            # n bytes, read `chunk` at a time with `ms` milliseconds between reads
            n, chunk, pause = int(cmd[1]), int(cmd[2]), int(cmd[3]) / 1000
            h, got = hashlib.sha256(), 0
            while got < n:
                b = conn.recv(min(chunk, n - got))
                if not b:
                    break
                h.update(b)
                got += len(b)
                time.sleep(pause)
            conn.sendall(f"{got} {h.hexdigest()}\n".encode())
        elif cmd[0] == "PUTEOF":
            n, sha = recv_hash(conn)
            conn.sendall(f"{n} {sha}\n".encode())
        elif cmd[0] == "GET":
            send_data(conn, data, int(cmd[1]))
        elif cmd[0] == "GETTHENPUT":
            send_data(conn, data, int(cmd[1]))
            conn.shutdown(socket.SHUT_WR)
            n, sha = recv_hash(conn)
            out(server="GETTHENPUT", tag=cmd[2], bytes=n, sha256=sha)
        elif cmd[0] == "ECHO":
            left = int(cmd[1])
            while left > 0:
                b = conn.recv(min(left, CHUNK))
                if not b:
                    break
                conn.sendall(b)
                left -= len(b)
        elif cmd[0] == "RST":
            linger0(conn)
        elif cmd[0] == "EXPECTRST":
            try:
                n, _ = recv_hash(conn)
                out(server="EXPECTRST", result="eof", bytes=n)
            except ConnectionResetError:
                out(server="EXPECTRST", result="reset")
        elif cmd[0] == "DRAIN":
            recv_hash(conn, int(cmd[1]))
    except OSError as e:
        out(server=" ".join(cmd) if "cmd" in locals() else "?", error=type(e).__name__)
    finally:
        conn.close()


def tcp_server(addr, port, data, ready_path):
    s = listen_sock(socket.SOCK_STREAM, addr, int(port))
    s.listen(4096)
    ready(ready_path)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve_conn, args=(conn, data), daemon=True).start()


SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h; not in Python's socket module


def burst_datagrams(seed, groups):
    """The datagrams of a burst: for each "size:count" group, `count` datagrams of `size` random bytes."""
    rnd = random.Random(seed)
    out = []
    for g in groups:
        size, count = (int(x) for x in g.split(":"))
        out.append([rnd.randbytes(size) for _ in range(count)])
    return out


def digest(datagrams):
    return [[len(d), hashlib.sha256(d).hexdigest()[:16]] for d in datagrams]


def udp_burst(addr, port, ready_path):
    s = listen_sock(socket.SOCK_DGRAM, addr, int(port))
    ready(ready_path)
    while True:
        d, peer = s.recvfrom(65535)
        words = d.decode().split()
        if not words or words[0] != "BURST":
            continue
        for group in burst_datagrams(int(words[1]), words[2:]):
            if len(group) > 1 and len(group[0]) > 0:
                try:
                    s.setsockopt(SOL_UDP, UDP_SEGMENT, len(group[0]))
                    s.sendto(b"".join(group), peer)
                    continue
                except OSError:  # EINVAL: datagrams larger than the route's MTU
                    pass
                finally:
                    s.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
            for one in group:
                s.sendto(one, peer)


def udp_record(addr, port, ready_path):
    s = listen_sock(socket.SOCK_DGRAM, addr, int(port))
    ready(ready_path)
    seen = {}
    while True:
        d, peer = s.recvfrom(65535)
        if d == b"REPORT":
            s.sendto(json.dumps(digest(seen.pop(peer, []))).encode(), peer)
        else:
            seen.setdefault(peer, []).append(d)


def udp_echo(addr, port, ready_path):
    s = listen_sock(socket.SOCK_DGRAM, addr, int(port))
    ready(ready_path)
    while True:
        d, peer = s.recvfrom(65535)
        s.sendto(d, peer)


# Client operations -----------------------------------------------------------------------------


def connect(op):
    return socket.create_connection((op["addr"], op["port"]), timeout=op.get("timeout", 60))


def op_put(op, data):
    """Sends PUT n and n bytes of DATA; the reply is what the server received."""
    t = time.monotonic()
    with connect(op) as s:
        s.sendall(f"PUT {op['n']}\n".encode())
        send_data(s, data, op["n"])
        reply = read_line(s).split()
    return {"bytes": int(reply[0]), "sha256": reply[1], "secs": time.monotonic() - t}


def op_put_slow(op, data):
    """Sends n bytes to a server that reads `chunk` bytes every `ms` milliseconds."""
    t = time.monotonic()
    with connect(op) as s:
        s.sendall(f"PUTSLOW {op['n']} {op['chunk']} {op['ms']}\n".encode())
        send_data(s, data, op["n"])
        reply = read_line(s).split()
    return {"bytes": int(reply[0]), "sha256": reply[1], "secs": time.monotonic() - t}


def op_puteof(op, data):
    """Sends PUTEOF and n bytes, half-closes, then reads the server's reply to end of file."""
    t = time.monotonic()
    with connect(op) as s:
        s.sendall(b"PUTEOF\n")
        send_data(s, data, op["n"])
        s.shutdown(socket.SHUT_WR)
        reply = read_line(s).split()
        rest = s.recv(1)
    return {"bytes": int(reply[0]), "sha256": reply[1], "eof": rest == b"", "secs": time.monotonic() - t}


def op_get(op, data):
    t = time.monotonic()
    with connect(op) as s:
        s.sendall(f"GET {op['n']}\n".encode())
        n, sha = recv_hash(s)
    return {"bytes": n, "sha256": sha, "secs": time.monotonic() - t}


def op_get_slow(op, data):
    """GET n, reading `chunk` bytes every `ms` milliseconds."""
    t = time.monotonic()
    with connect(op) as s:
        s.sendall(f"GET {op['n']}\n".encode())
        h, n = hashlib.sha256(), 0
        while True:
            b = s.recv(op["chunk"])
            if not b:
                break
            h.update(b)
            n += len(b)
            time.sleep(op["ms"] / 1000)
    return {"bytes": n, "sha256": h.hexdigest(), "secs": time.monotonic() - t}


def op_get_then_put(op, data):
    """Downloads n bytes to the server's half-close, then uploads n bytes and closes."""
    with connect(op) as s:
        s.sendall(f"GETTHENPUT {op['n']} {op['tag']}\n".encode())
        n, sha = recv_hash(s)
        send_data(s, data, op["n"])
    return {"bytes": n, "sha256": sha}


def op_rst_from_server(op, data):
    """Asks the server to reset the connection; returns what recv() saw."""
    with connect(op) as s:
        s.sendall(b"RST\n")
        try:
            b = s.recv(1)
            return {"result": "eof" if b == b"" else "data"}
        except ConnectionResetError:
            return {"result": "reset"}


def op_rst_to_server(op, data):
    """Resets the connection from this side once the server waits in recv()."""
    s = connect(op)
    s.sendall(b"EXPECTRST\n" + b"x" * 1000)
    time.sleep(0.3)
    linger0(s)
    s.close()
    return {"result": "sent"}


def op_early_close_get(op, data):
    """GET n but close after `read` bytes, with the rest unread (the kernel resets)."""
    with connect(op) as s:
        s.sendall(f"GET {op['n']}\n".encode())
        got, _ = recv_hash(s, op["read"])
    return {"bytes": got}


def op_early_close_put(op, data):
    """Sends n bytes to a server that stops reading after `drain` bytes and closes."""
    with connect(op) as s:
        s.sendall(f"DRAIN {op['drain']}\n".encode())
        try:
            send_data(s, data, op["n"])
            s.shutdown(socket.SHUT_WR)
            return {"result": "eof" if s.recv(1) == b"" else "data"}
        except (ConnectionResetError, BrokenPipeError) as e:
            return {"result": type(e).__name__}


def op_wait_file(op, data):
    """Waits until the file `path` exists (the test's cue to go on), at most `secs` seconds."""
    deadline = time.monotonic() + op.get("secs", 30)
    while not os.path.exists(op["path"]):
        if time.monotonic() > deadline:
            return {"error": f"{op['path']} did not appear"}
        time.sleep(0.05)
    return {"result": "go"}


def op_connect_close(op, data):
    """Connects and closes at once, sending nothing."""
    connect(op).close()
    return {"result": "closed"}


async def echo_one(op, i):
    rnd = random.Random(op["seed"] * 100003 + i)
    payload = rnd.randbytes(rnd.randint(1, op["max"]))
    reader, writer = await asyncio.open_connection(op["addr"], op["port"])
    try:
        writer.write(f"ECHO {len(payload)}\n".encode() + payload)
        await writer.drain()
        back = await reader.readexactly(len(payload))
        return hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    finally:
        writer.close()


async def echo_many(op):
    tasks = [echo_one(op, i) for i in range(op["count"])]
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), op.get("timeout", 60))
    errors = [f"{i}: {r!r}" for i, r in enumerate(results) if r is not True]
    return {"ok": sum(1 for r in results if r is True), "errors": errors[:10]}


def op_echo_many(op, data):
    """`count` concurrent connections, each echoing its own random payload of 1 to `max` bytes."""
    t = time.monotonic()
    r = asyncio.run(echo_many(op))
    r["secs"] = time.monotonic() - t
    return r


def op_udp_echo(op, data):
    """Sends one datagram of each size in `sizes` and checks that the same bytes come back."""
    rnd = random.Random(op.get("seed", 42))
    results = []
    with socket.socket(family(op["addr"]), socket.SOCK_DGRAM) as s:
        s.settimeout(op.get("wait", 1.0))
        s.connect((op["addr"], op["port"]))
        for size in op["sizes"]:
            payload = rnd.randbytes(size)
            ok = False
            for _ in range(op.get("tries", 3)):
                s.send(payload)
                try:
                    back = s.recv(65536)
                except (socket.timeout, ConnectionRefusedError):
                    continue
                ok = back == payload
                break
            results.append({"size": size, "ok": ok})
    return {"results": results}


def op_udp_burst(op, data):
    """Asks a udp-burst server for `groups` ("size:count") and reports what came back and what should have."""
    expected = [d for g in burst_datagrams(op["seed"], op["groups"]) for d in g]
    got = []
    with socket.socket(family(op["addr"]), socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.settimeout(op.get("wait", 2.0))
        s.connect((op["addr"], op["port"]))
        s.send(f"BURST {op['seed']} {' '.join(op['groups'])}".encode())
        try:
            while len(got) < len(expected):
                got.append(s.recv(65536))
        except socket.timeout:
            pass
    return {"got": digest(got), "expected": digest(expected)}


def op_udp_gso_send(op, data):
    """Sends `n` random bytes in one sendto() with UDP_SEGMENT `size`, then asks a udp-record server what came."""
    payload = random.Random(op.get("seed", 7)).randbytes(op["n"])
    size = op["size"]
    expected = [payload[i:i + size] for i in range(0, len(payload), size)]
    with socket.socket(family(op["addr"]), socket.SOCK_DGRAM) as s:
        s.settimeout(op.get("wait", 2.0))
        s.connect((op["addr"], op["port"]))
        s.setsockopt(SOL_UDP, UDP_SEGMENT, size)
        s.send(payload)
        s.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
        s.send(b"REPORT")
        got = json.loads(s.recv(65536))
    return {"got": got, "expected": digest(expected)}


OPS = {
    "put": op_put,
    "puteof": op_puteof,
    "put-slow": op_put_slow,
    "get-slow": op_get_slow,
    "get-then-put": op_get_then_put,
    "get": op_get,
    "rst-from-server": op_rst_from_server,
    "rst-to-server": op_rst_to_server,
    "early-close-get": op_early_close_get,
    "early-close-put": op_early_close_put,
    "connect-close": op_connect_close,
    "wait-file": op_wait_file,
    "echo-many": op_echo_many,
    "udp-echo": op_udp_echo,
    "udp-burst": op_udp_burst,
    "udp-gso-send": op_udp_gso_send,
}


def run_op(op, data):
    try:
        r = OPS[op["op"]](op, data)
    except Exception as e:  # reported, so the test shows what failed and where
        r = {"error": f"{type(e).__name__}: {e}"}
    out(op=op["op"], addr=op.get("addr"), tag=op.get("tag"), **r)


def main():
    cmd = sys.argv[1]
    if cmd == "tcp-server":
        tcp_server(*sys.argv[2:6])
    elif cmd == "udp-echo":
        udp_echo(*sys.argv[2:5])
    elif cmd == "udp-burst":
        udp_burst(*sys.argv[2:5])
    elif cmd == "udp-record":
        udp_record(*sys.argv[2:5])
    elif cmd == "client":
        ops = json.loads(sys.argv[2])
        data = sys.argv[3] if len(sys.argv) > 3 else None
        for op in ops:
            run_op(op, data)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
