// SPDX-License-Identifier: GPL-2.0-or-later
// fwd.ts - e2e helpers for port forwarding: reachability probes, servers in the namespace, transfers
//
// The probe is a small python3 script run where the client sits (host or namespace). It retries
// every 50 ms until the expected outcome or its deadline and prints how long that took, so a test
// asserts "reachable within 2 s" on the time measured next to the socket, not on process start-up.

import type { RunResult, SpawnHandle, Topology } from "./netns.ts";

const PROBE_PY = `
import socket, sys, time
mode, proto, host, port, timeout_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
t0 = time.monotonic()
last = ""
while True:
    ok = False
    try:
        if proto == "tcp":
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect((host, port))
            data = s.recv(100)
            s.close()
            last = "connected, read %r" % data
            ok = mode == "up" and data != b""
        else:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            s.connect((host, port))
            s.send(b"ping")
            data = s.recv(100)
            s.close()
            last = "reply %r" % data
            ok = mode == "up" and data != b""
    except ConnectionRefusedError:
        last = "refused"
        ok = mode == "down"
    except OSError as e:
        last = repr(e)
    elapsed = (time.monotonic() - t0) * 1000
    if ok:
        print(int(elapsed))
        sys.exit(0)
    if elapsed > timeout_ms:
        print("no %s after %d ms, last: %s" % (mode, elapsed, last))
        sys.exit(1)
    time.sleep(0.05)
`;

/** Where a probe or server runs: the topology's host or router, or inside a namespace through `enter`. */
export type Place =
  | { readonly where: "host" | "router" }
  | { readonly where: "ns"; readonly enter: (argv: string[]) => string[] };

function argvAt(place: Place, argv: string[]): string[] {
  return place.where === "ns" ? place.enter(argv) : argv;
}

/** Run options for `place`: root on the host and router (ss needs it there), nobody in a namespace. */
function optsAt(place: Place): { user: "root" | "nobody"; ns: "host" | "router" } {
  return { user: place.where === "ns" ? "nobody" : "root", ns: place.where === "router" ? "router" : "host" };
}

/**
 * Runs the probe at `place` until `host:port` answers (`up`: TCP sends a line, UDP replies) or
 * refuses (`down`), for at most `timeoutMs`. Resolves with the run; on success stdout is the
 * elapsed time in ms.
 */
export function probe(
  topo: Topology, place: Place, mode: "up" | "down", proto: "tcp" | "udp", host: string, port: number, timeoutMs = 5000,
): Promise<RunResult> {
  const script = topo.writeFile("probe.py", PROBE_PY);
  return topo.run(argvAt(place, ["python3", script, mode, proto, host, String(port), String(timeoutMs)]), {
    ...optsAt(place), timeoutMs: timeoutMs + 10_000,
  });
}

/**
 * Starts a socat server at `place` on the wildcard of both IP versions ([::], dual-stack), answering
 * each TCP connection or UDP datagram with `reply`, or on `bind` only; resolves once `ss` shows it.
 */
export async function serve(
  topo: Topology, place: Place, proto: "tcp" | "udp", port: number, reply: string, bind?: string,
): Promise<SpawnHandle> {
  const family = bind !== undefined && !bind.includes(":") ? "4" : "6";
  const kind = proto === "tcp" ? `TCP${family}-LISTEN` : `UDP${family}-RECVFROM`;
  const opts = `${port},reuseaddr,fork${bind !== undefined ? `,bind=${bind}` : ""}`;
  const h = topo.spawn(argvAt(place, ["socat", `${kind}:${opts}`, `SYSTEM:echo ${reply}`]), {
    ...optsAt(place), timeoutMs: 600_000,
  });
  const ss = proto === "tcp" ? "-Hltn" : "-Hlun";
  for (let i = 0; i < 200; i++) {
    const r = await topo.run(argvAt(place, ["ss", ss]), optsAt(place));
    if (r.stdout.split("\n").some((l) => l.includes(`:${port} `))) return h;
    if (!h.alive()) break;
    await Bun.sleep(20);
  }
  throw new Error(`${proto} server on port ${port} did not start: ${h.output().stderr}`);
}

/** Returns the listening sockets (`ss -Hltn` or `-Hlun` lines) on `port` at `place`. */
export async function listenersOn(topo: Topology, place: Place, proto: "tcp" | "udp", port: number): Promise<string[]> {
  const r = await topo.run(argvAt(place, ["ss", proto === "tcp" ? "-Hltn" : "-Hlun"]), optsAt(place));
  return r.stdout.split("\n").filter((l) => l.includes(`:${port} `));
}
