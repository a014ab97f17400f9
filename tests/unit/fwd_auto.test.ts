// SPDX-License-Identifier: GPL-2.0-or-later
// fwd_auto.test.ts - the scanners of automatic forwarding, on captured /proc/net tables and sock_diag replies,
// and the listener sync, with spies for the listeners

import { describe, expect, spyOn, test } from "bun:test";
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  diagOpen, type ListenerIo, parsePortRange, PROC_TCP_LISTEN, PROC_UDP_BOUND, ProcNetFile, procNetScan, ruleListeners,
  type RuleListeners, syncRule, TcpListenDiag, TcpListenScan,
} from "../../src/fwd_auto.ts";
import type { PortRange, PortRule } from "../../src/conf.ts";
import { log } from "../../src/log.ts";
import { PortSet } from "../../src/fwd_ports.ts";
import {
  AF_INET, AF_INET6, AF_UNIX, close, Errno, F_GETFD, fcntl, MSG_DONTWAIT, recv, SOCK_CLOEXEC, SOCK_DGRAM, socketpair, write,
} from "../../syscalls/mod.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/procfs");
const DIAG_FIXTURES = join(import.meta.dir, "../fixtures/sock_diag");

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, name)));
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Returns the ports in `set`, ascending. */
function ports(set: PortSet): number[] {
  return set.toArray();
}

/** Returns a set holding every port, 0-65535: what a scan must clear first. */
function everyPort(): PortSet {
  const set = new PortSet();
  for (let p = 0; p <= 65535; p++) set.add(p);
  return set;
}

function scan(text: Uint8Array, state: number): { found: number; ports: number[] } {
  const map = new PortSet();
  const found = procNetScan(text, state, map);
  return { found, ports: ports(map) };
}

describe("procNetScan()", () => {
  test("procNetScan() finds the TCP listeners of /proc/net/tcp, not the established connections", () => {
    // 0.0.0.0:22 and 127.0.0.1:8080 listen; 127.0.0.1:43044 <-> :8080 is established both ways.
    expect(scan(fixture("net_tcp.txt"), PROC_TCP_LISTEN)).toEqual({ found: 2, ports: [22, 8080] });
  });

  test("procNetScan() reads the 32-digit addresses of /proc/net/tcp6", () => {
    // [::]:443 (dual-stack) and [::1]:5201 listen; a connection to 5201 is established.
    expect(scan(fixture("net_tcp6.txt"), PROC_TCP_LISTEN)).toEqual({ found: 2, ports: [443, 5201] });
  });

  test("procNetScan() finds bound UDP sockets (state 07) and skips connected ones (01)", () => {
    // 0.0.0.0:53 and 127.0.0.53:5353 bound; 127.0.0.1:40000 connected to :53.
    expect(scan(fixture("net_udp.txt"), PROC_UDP_BOUND)).toEqual({ found: 2, ports: [53, 5353] });
    expect(scan(fixture("net_udp6.txt"), PROC_UDP_BOUND)).toEqual({ found: 1, ports: [547] });
  });

  test("procNetScan() matches only the state asked for", () => {
    expect(scan(fixture("net_tcp.txt"), 0x01).ports).toEqual([8080, 43044]);
    expect(scan(fixture("net_udp.txt"), PROC_TCP_LISTEN).found).toBe(0);
  });

  test("procNetScan() adds to the map: IPv4 and IPv6 tables share one", () => {
    const map = new PortSet();
    procNetScan(fixture("net_tcp.txt"), PROC_TCP_LISTEN, map);
    procNetScan(fixture("net_tcp6.txt"), PROC_TCP_LISTEN, map);
    expect(ports(map)).toEqual([22, 443, 5201, 8080]);
  });

  test("procNetScan() takes the header alone, or nothing, as an empty table", () => {
    const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    expect(scan(bytes(header), PROC_TCP_LISTEN).found).toBe(0);
    expect(scan(new Uint8Array(0), PROC_TCP_LISTEN).found).toBe(0);
  });

  test("procNetScan() reads a last line without a newline, and sequence numbers without leading spaces", () => {
    const text = "header\n14281: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0";
    expect(scan(bytes(text), PROC_UDP_BOUND).ports).toEqual([53]);
  });

  test.each([
    ["a short address", "   0: 0000000:0016 00000000:0000 0A 0"],
    ["a 16-digit address", "   0: 0000000000000000:0016 00000000:0000 0A 0"],
    ["a 3-digit port", "   0: 00000000:016 00000000:0000 0A 0"],
    ["a non-hex port", "   0: 00000000:00G6 00000000:0000 0A 0"],
    ["no sequence number", "   : 00000000:0016 00000000:0000 0A 0"],
    ["no remote address", "   0: 00000000:0016  "],
    ["a 3-digit state", "   0: 00000000:0016 00000000:0000 0A0 0"],
    ["a cut state", "   0: 00000000:0016 00000000:0000 0"],
    ["port 0", "   0: 00000000:0000 00000000:0000 0A 0"],
  ])("procNetScan() skips a line with %s", (_what, line) => {
    const text = `header\n${line}\n   1: 00000000:0050 00000000:0000 0A 0\n`;
    expect(scan(bytes(text), PROC_TCP_LISTEN)).toEqual({ found: 1, ports: [80] });
  });

  test("procNetScan() never throws on any truncation of a real table", () => {
    const full = fixture("net_tcp6.txt");
    for (let n = 0; n <= full.byteLength; n++) {
      const map = new PortSet();
      const found = procNetScan(full.subarray(0, n), PROC_TCP_LISTEN, map);
      expect(found).toBeLessThanOrEqual(2);
      for (const p of ports(map)) expect([443, 5201]).toContain(p);
    }
  });

  test("procNetScan() never throws on mutated tables (seed 42)", () => {
    const full = fixture("net_udp.txt");
    let x = 42;
    for (let round = 0; round < 2000; round++) {
      const b = full.slice();
      for (let k = 0; k < 8; k++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        b[x % b.length] = x >>> 24;
      }
      const map = new PortSet();
      expect(procNetScan(b, PROC_UDP_BOUND, map)).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("parsePortRange()", () => {
  test.each<[string, { first: number; last: number } | null]>([
    ["32768\t60999\n", { first: 32768, last: 60999 }],
    ["1024 65535", { first: 1024, last: 65535 }],
    ["60999\t32768\n", null],
    ["32768\n", null],
    ["32768\t65536\n", null],
    ["", null],
    ["a\tb", null],
  ])("parsePortRange(%p) is %p", (text, expected) => {
    expect(parsePortRange(text)).toEqual(expected);
  });
});

describe("ProcNetFile", () => {
  test("ProcNetFile.read() rereads the file from the start each time, growing its buffer", () => {
    const path = join(tmpdir(), `fwd_auto-${process.pid}.txt`);
    const big = readFileSync(join(FIXTURES, "net_tcp.txt"), "utf8");
    const header = big.slice(0, big.indexOf("\n") + 1);
    // More than the initial 64 KiB buffer: 2000 listeners on ports 1000-2999.
    let text = header;
    for (let i = 0; i < 2000; i++) {
      const port = (1000 + i).toString(16).toUpperCase().padStart(4, "0");
      text += `${String(i).padStart(4)}: 00000000:${port} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n`;
    }
    writeFileSync(path, text);
    const fd = openSync(path, "r");
    try {
      const f = new ProcNetFile(fd, "test");
      for (let round = 0; round < 2; round++) {
        const map = new PortSet();
        expect(f.scan(PROC_TCP_LISTEN, map)).toBe(2000);
        expect(map.has(1000)).toBe(true);
        expect(map.has(2999)).toBe(true);
        expect(map.has(3000)).toBe(false);
      }
      expect(f.read()!.byteLength).toBe(Buffer.byteLength(text));
    } finally {
      closeSync(fd);
      unlinkSync(path);
    }
  });

  test("ProcNetFile.scan() on a real /proc/net/tcp sees a listener of this process", () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const fd = openSync("/proc/net/tcp", "r");
    try {
      const map = new PortSet();
      new ProcNetFile(fd, "/proc/net/tcp").scan(PROC_TCP_LISTEN, map);
      expect(map.has(server.port)).toBe(true);
    } finally {
      closeSync(fd);
      server.stop(true);
    }
  });
});

/** The datagrams of a sock_diag fixture, as the kernel sent them (lengths from datagrams.txt). */
function diagDatagrams(name: string): Uint8Array[] {
  const all = new Uint8Array(readFileSync(join(DIAG_FIXTURES, name)));
  const line = readFileSync(join(DIAG_FIXTURES, "datagrams.txt"), "utf8").split("\n").find((l) => l.startsWith(`${name}:`));
  if (line === undefined) throw new Error(`datagrams.txt has no ${name}`);
  let off = 0;
  return line.slice(name.length + 1).trim().split(" ").map(Number).map((len) => all.slice(off, (off += len)));
}

/**
 * Returns [ours, kernel]: a datagram socketpair standing for a sock_diag socket, `kernel`
 * already holding `replies`, one datagram each, for our end to read.
 */
function fakeDiag(replies: Uint8Array[]): [number, number] {
  const fds = new Int32Array(2);
  expect(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds)).toBe(0);
  for (const d of replies) expect(write(fds[1]!, d, d.length)).toBe(d.length);
  return [fds[0]!, fds[1]!];
}

/** Returns the datagrams waiting on `fd`: the requests our end sent. */
function requests(fd: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (let n; (n = recv(fd, buf, buf.length, MSG_DONTWAIT)) >= 0; ) out.push(buf.slice(0, n));
  return out;
}

/** The /proc/net/tcp and tcp6 fixtures, open as the fallback tables. */
function tcpTables(): [ProcNetFile, ProcNetFile] {
  return [
    new ProcNetFile(openSync(join(FIXTURES, "net_tcp.txt"), "r"), "net_tcp.txt"),
    new ProcNetFile(openSync(join(FIXTURES, "net_tcp6.txt"), "r"), "net_tcp6.txt"),
  ];
}

describe("TcpListenDiag and TcpListenScan", () => {
  // capture.py's listeners: 0.0.0.0:22, 127.0.0.1:8080 and :10000-10039, [::]:443, [::1]:5201.
  const DIAG_PORTS = [22, 443, 5201, 8080, ...Array.from({ length: 40 }, (_, i) => 10000 + i)];
  // The procfs fixtures' listeners: 0.0.0.0:22, 127.0.0.1:8080, [::]:443, [::1]:5201.
  const PROC_PORTS = [22, 443, 5201, 8080];

  test("TcpListenDiag.scan() dumps IPv4 then IPv6 listeners and marks the ports of both replies", () => {
    const [ours, kernel] = fakeDiag([...diagDatagrams("tcp4_listen.bin"), ...diagDatagrams("tcp6_listen.bin")]);
    try {
      const map = new PortSet();
      expect(new TcpListenDiag(ours).scan(map)).toBe(44);
      expect(ports(map)).toEqual(DIAG_PORTS);
      // Requests: SOCK_DIAG_BY_FAMILY dumps, sequence 1 then 2, AF_INET then AF_INET6, TCP, LISTEN.
      const sent = requests(kernel).map((r) => [r.length, r[4], r[8], r[16], r[17], r[21]]);
      expect(sent).toEqual([[72, 20, 1, AF_INET, 6, 4], [72, 20, 2, AF_INET6, 6, 4]]);
    } finally {
      close(ours);
      close(kernel);
    }
  });

  test("TcpListenScan reads the tables from the first failed dump on, and closes the diag socket", () => {
    const refusal = diagDatagrams("noproto_done.bin")[0]!; // NLMSG_DONE, -ENOENT
    new DataView(refusal.buffer).setUint32(8, 1, true); // the answer to our first request
    const [ours, kernel] = fakeDiag([refusal]);
    const scan = new TcpListenScan(new TcpListenDiag(ours), tcpTables(), "test");
    try {
      const map = everyPort();
      expect(scan.scan(map)).toBe(4);
      expect(ports(map)).toEqual(PROC_PORTS);
      expect(scan.usingDiag).toBe(false);
      expect(fcntl(ours, F_GETFD)).toBe(-Errno.EBADF);
      expect(scan.scan(map)).toBe(4);
      expect(requests(kernel).length).toBe(1);
    } finally {
      scan.close();
      close(kernel);
    }
  });

  test("TcpListenScan reads the tables when the kernel does not answer at all", () => {
    const [ours, kernel] = fakeDiag([]);
    const scan = new TcpListenScan(new TcpListenDiag(ours), tcpTables(), "test");
    try {
      const map = new PortSet();
      expect(scan.scan(map)).toBe(4);
      expect(ports(map)).toEqual(PROC_PORTS);
      expect(scan.usingDiag).toBe(false);
    } finally {
      scan.close();
      close(kernel);
    }
  });

  test("TcpListenScan without a diag socket reads the tables, and clears the map first", () => {
    const scan = new TcpListenScan(null, tcpTables(), "test");
    try {
      const map = everyPort();
      expect(scan.scan(map)).toBe(4);
      expect(ports(map)).toEqual(PROC_PORTS);
    } finally {
      scan.close();
    }
  });

  test("TcpListenDiag.scan() on a real sock_diag socket sees this process's IPv4 and IPv6 listeners", () => {
    const server4 = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const server6 = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
    const fd = diagOpen();
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      const diag = new TcpListenDiag(fd);
      for (let round = 0; round < 2; round++) {
        const map = new PortSet();
        expect(diag.scan(map)).toBeGreaterThanOrEqual(2);
        expect([map.has(server4.port), map.has(server6.port)]).toEqual([true, true]);
      }
    } finally {
      close(fd);
      server4.stop(true);
      server6.stop(true);
    }
  });
});

/** A PortRule for `first`-`last` forwarding to the same ports, as conf.ts builds them. */
function portRule(first: number, last: number, opts: { auto?: boolean; all?: boolean; exclude?: PortRange[] } = {}): PortRule {
  return {
    bindAddr: null, ifname: null, first, last, toAddr: null, toFirst: first,
    exclude: opts.exclude ?? [], all: opts.all ?? false, auto: opts.auto ?? false,
  };
}

function portSet(...list: number[]): PortSet {
  const s = new PortSet();
  for (const p of list) s.add(p);
  return s;
}

/**
 * Listener spies: open() hands out handles 1000, 1001... unless `failing` holds the port (then
 * -EADDRINUSE); both record what they were asked, as "open 22/0" (port/address) or "close 1000".
 */
function spyIo(failing = new Set<number>()): ListenerIo & { calls: string[] } {
  let next = 1000;
  const calls: string[] = [];
  return {
    calls,
    open(_rl, port, a) {
      calls.push(`open ${port}/${a}`);
      return failing.has(port) ? -Errno.EADDRINUSE : next++;
    },
    close(_rl, handle) {
      calls.push(`close ${handle}`);
    },
  };
}

/**
 * Returns `rl` with its handles and allowed[] behind proxies that record which ports of the
 * rule were looked at (the work of a sync), in `touched`.
 */
function watched(rl: RuleListeners): { rl: RuleListeners; touched: Set<number> } {
  const touched = new Set<number>();
  const na = rl.addrs.length;
  const spy = <T extends Int32Array | Uint8Array>(arr: T, portOf: (i: number) => number): T =>
    new Proxy(arr, {
      get(t, k) {
        if (typeof k === "string" && /^\d+$/.test(k)) touched.add(portOf(Number(k)));
        return Reflect.get(t, k, t);
      },
      set(t, k, v) {
        return Reflect.set(t, k, v, t);
      },
    });
  return {
    rl: {
      ...rl,
      handles: spy(rl.handles, (i) => rl.rule.first + Math.floor(i / na)),
      allowed: spy(rl.allowed, (i) => rl.rule.first + i),
    },
    touched,
  };
}

const TWO_ADDRS = [Uint8Array.of(127, 0, 0, 1), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)];
const EPHEMERAL = { first: 49152, last: 65535 };

describe("ruleListeners() and syncRule()", () => {
  test("syncRule() of `-T auto` (1-65535) looks only at the 3 ports bound and those it listens on, not the whole range", () => {
    const io = spyIo();
    const { rl, touched } = watched(ruleListeners("-T", "TCP", 1, portRule(1, 65535, { auto: true, all: true }), TWO_ADDRS, EPHEMERAL));
    expect(syncRule(io, rl, portSet(8080, 22, 5201), false)).toBe(3);
    expect(io.calls).toEqual(["open 22/0", "open 22/1", "open 5201/0", "open 5201/1", "open 8080/0", "open 8080/1"]);
    expect([...touched].sort((a, b) => a - b)).toEqual([22, 5201, 8080]);

    // 8080 goes away, 9000 appears: the next sync looks at those and at what it listens on.
    touched.clear();
    io.calls.length = 0;
    expect(syncRule(io, rl, portSet(22, 5201, 9000), false)).toBe(3);
    expect(io.calls).toEqual(["close 1004", "close 1005", "open 9000/0", "open 9000/1"]);
    expect([...touched].sort((a, b) => a - b)).toEqual([22, 5201, 8080, 9000]);
    expect(rl.open.toArray()).toEqual([22, 5201, 9000]);
  });

  test("syncRule() with a map skips ports outside the rule, excluded or ephemeral for `auto`", () => {
    const io = spyIo();
    const rl = ruleListeners("-t", "TCP", 0, portRule(1, 65535, { auto: true, all: true, exclude: [{ first: 80, last: 89 }] }), [null], EPHEMERAL);
    expect(syncRule(io, rl, portSet(0, 22, 85, 49152, 60000), false)).toBe(1);
    expect(io.calls).toEqual(["open 22/0"]);
    const ranged = ruleListeners("-t", "TCP", 0, portRule(8000, 8010, { auto: true }), [null], EPHEMERAL);
    expect(syncRule(io, ranged, portSet(22, 7999, 8000, 8010, 8011), false)).toBe(2);
    expect(io.calls).toEqual(["open 22/0", "open 8000/0", "open 8010/0"]);
  });

  test("syncRule() warns once for a port it cannot listen on, then logs at debug level until the port goes away", () => {
    const warn = spyOn(log, "warn").mockImplementation(() => {});
    const debug = spyOn(log, "debug").mockImplementation(() => {});
    try {
      const io = spyIo(new Set([53]));
      const rl = ruleListeners("-U", "UDP", 1, portRule(1, 65535, { auto: true, all: true }), TWO_ADDRS.slice(0, 1), EPHEMERAL);
      const cannot = "-U auto: can't listen on UDP port 53: EADDRINUSE";
      syncRule(io, rl, portSet(53), false);
      syncRule(io, rl, portSet(53), false);
      expect(warn.mock.calls).toEqual([[cannot]]);
      expect(debug.mock.calls.filter(([m]) => m === cannot).length).toBe(1);
      // Gone (no listener to close, only the warning to forget), then back: a warning again.
      syncRule(io, rl, portSet(), false);
      expect(rl.warned.count).toBe(0);
      syncRule(io, rl, portSet(53), false);
      expect(warn.mock.calls).toEqual([[cannot], [cannot]]);
      // Quiet syncs never warn.
      syncRule(io, rl, portSet(), false);
      syncRule(io, rl, portSet(53), true);
      expect(warn.mock.calls.length).toBe(2);
    } finally {
      warn.mockRestore();
      debug.mockRestore();
    }
  });

  test("syncRule() without a map opens every allowed port of an `all` rule: excludes and ephemeral ports left out", () => {
    const io = spyIo();
    // An exclude below the rule's range must change nothing (not count from the end).
    const rule = portRule(1000, 1100, { all: true, exclude: [{ first: 900, last: 950 }, { first: 1010, last: 1019 }] });
    const rl = ruleListeners("-t", "TCP", 0, rule, [null], { first: 1090, last: 60999 });
    const expected = [...Array.from({ length: 10 }, (_, i) => 1000 + i), ...Array.from({ length: 70 }, (_, i) => 1020 + i)];
    expect(syncRule(io, rl, null, true)).toBe(expected.length);
    expect(io.calls).toEqual(expected.map((p) => `open ${p}/0`));
    expect(rl.open.toArray()).toEqual(expected);
  });
});
