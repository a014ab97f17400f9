// SPDX-License-Identifier: GPL-2.0-or-later
// ports.ts - the port forwarding SPEC grammar of -t, -u, -T and -U
//
// Theory of operation
//
//   SPEC  := none | [(ADDR|*)[%IFNAME]/] CHUNK{,CHUNK}
//   CHUNK := first[-last][:[toaddr/]tofirst[-tolast]] | first[-last]:toaddr
//          | ~first[-last] | all[:toaddr] | auto
//
// One SPEC becomes a list of PortRules, the way upstream's fwd_rule.c builds its
// table, with one difference: upstream expands "all" against the host's
// ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), which this
// pure parser cannot read. So:
//
// - Include chunks (`8000-8010`, `22:2222`) become rules already split around
//   the SPEC's excluded ports: `2000-5000,~3000-3010` gives 2000-2999 and
//   3011-5000, each with `exclude: []`.
// - A SPEC with no include chunk (only `all`, only `auto`, only excludes, or a
//   mix of those) becomes ONE rule with `all: true`, first 1, last 65535, and
//   the excluded ranges in `exclude`. The forwarding layer must also leave out
//   the host's ephemeral ports, and reports failures only if no port at all
//   could be bound (upstream's "best effort", FWD_WEAK).
// - `all` next to an include chunk only lends its target address; it does not
//   add ports (upstream does the same: `22,all` forwards port 22 only).
// - `auto` anywhere in the SPEC sets `auto: true` on every rule of that SPEC:
//   forward a port only while it is bound in the target namespace.
//
// Addresses are 4 or 16 bytes; null means "any" (bindAddr: dual-stack wildcard,
// `*` or no prefix) or "the guest's own address" (toAddr).

import { isMulticast, parseIpv4, parseIpv6 } from "../wire/addr.ts";

/** Highest port number. */
export const PORT_MAX = 65535;
/** Linux IFNAMSIZ minus the terminator: the longest interface name. */
export const IFNAME_MAX_LEN = 15;

/** An inclusive range of port numbers. */
export interface PortRange {
  /** First port, 1-65535. */
  readonly first: number;
  /** Last port, first-65535. */
  readonly last: number;
}

/** One forwarding rule: listening ports first..last go to toFirst.. on the other side. */
export interface PortRule {
  /** Listening address (4 or 16 bytes); null for the dual-stack wildcard. */
  readonly bindAddr: Uint8Array | null;
  /** Listening interface (SO_BINDTODEVICE); null for any. */
  readonly ifname: string | null;
  /** First listening port. */
  readonly first: number;
  /** Last listening port (inclusive). */
  readonly last: number;
  /** Target address (4 or 16 bytes); null for the guest's or namespace's own address. */
  readonly toAddr: Uint8Array | null;
  /** Target port for `first`; port first+k goes to toFirst+k. */
  readonly toFirst: number;
  /** Ports inside first..last not to forward (only non-empty on `all` rules). */
  readonly exclude: readonly PortRange[];
  /** Made from `all`, `auto` alone or excludes alone: skip ephemeral ports, best effort. */
  readonly all: boolean;
  /** Forward only ports that are bound on the target side (rescanned every second). */
  readonly auto: boolean;
}

/** What parsePortSpec() accepts in a SPEC. */
export interface PortSpecOptions {
  /** `auto` is allowed (pasta only). */
  readonly allowAuto: boolean;
  /** An `ADDR[%IF]/` prefix is allowed (not for -T/-U). */
  readonly allowBind: boolean;
}

/** Result of parsePortSpec(): the rules, or the reason the SPEC is refused. */
export type PortSpecResult =
  | { readonly ok: true; readonly none: boolean; readonly rules: readonly PortRule[] }
  | { readonly ok: false; readonly reason: string };

type Chunk =
  | { readonly kind: "all"; readonly toAddr: Uint8Array | null }
  | { readonly kind: "auto" }
  | { readonly kind: "exclude"; readonly range: PortRange }
  | {
      readonly kind: "include";
      readonly range: PortRange;
      readonly toAddr: Uint8Array | null;
      readonly to: PortRange;
    };

/** Thrown inside this module only, turned into `{ ok: false }` at the boundary. */
class SpecError extends Error {}

const RANGE_RE = /^(\d+)(?:-(\d+))?$/;
const RANGE_LOOSE_RE = /^[\d-]+$/;

function parsePort(text: string): number {
  const n = Number(text);
  if (n < 1 || n > PORT_MAX) throw new SpecError(`port ${text} out of range (1-${PORT_MAX})`);
  return n;
}

/** Returns the range in `text`, or null if `text` is not digits[-digits]; throws on bad numbers. */
function parseRange(text: string): PortRange | null {
  const m = RANGE_RE.exec(text);
  if (!m) {
    if (text !== "" && RANGE_LOOSE_RE.test(text)) throw new SpecError(`invalid port range '${text}'`);
    return null;
  }
  const first = parsePort(m[1]!);
  const last = m[2] === undefined ? first : parsePort(m[2]);
  if (last < first) throw new SpecError(`port range ${text} is reversed`);
  return { first, last };
}

/** Returns the address bytes of `text`, allowing [brackets]; null if it is not an address. */
export function parseInany(text: string): Uint8Array | null {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (bare.includes(":")) return parseIpv6(bare);
  return parseIpv4(bare);
}

function targetAddr(text: string): Uint8Array {
  const addr = parseInany(text);
  if (!addr) throw new SpecError(`invalid target address '${text}'`);
  if (isMulticast(addr)) throw new SpecError(`multicast target address '${text}'`);
  return addr;
}

function parseChunk(chunk: string): Chunk {
  if (chunk === "") throw new SpecError("empty port list entry");
  if (chunk === "auto") return { kind: "auto" };
  if (chunk === "all") return { kind: "all", toAddr: null };
  if (chunk.startsWith("all:")) return { kind: "all", toAddr: targetAddr(chunk.slice(4)) };
  if (chunk.startsWith("~")) {
    const range = parseRange(chunk.slice(1));
    if (!range) throw new SpecError(`exclude '${chunk}' needs a port or range after '~'`);
    return { kind: "exclude", range };
  }
  const colon = chunk.indexOf(":");
  const lhs = colon < 0 ? chunk : chunk.slice(0, colon);
  const range = parseRange(lhs);
  if (!range) throw new SpecError(`invalid port '${chunk}'`);
  if (colon < 0) return { kind: "include", range, toAddr: null, to: range };

  const rhs = chunk.slice(colon + 1);
  const slash = rhs.lastIndexOf("/");
  if (slash >= 0) {
    const toAddr = targetAddr(rhs.slice(0, slash));
    const to = parseRange(rhs.slice(slash + 1));
    if (!to) throw new SpecError(`invalid target port '${rhs.slice(slash + 1)}'`);
    return { kind: "include", range, toAddr, to };
  }
  const to = parseRange(rhs);
  if (to) return { kind: "include", range, toAddr: null, to };
  return { kind: "include", range, toAddr: targetAddr(rhs), to: range };
}

interface BindPrefix {
  readonly addr: Uint8Array | null;
  readonly ifname: string | null;
  readonly rest: string;
}

function checkIfname(name: string): string {
  if (name === "" || name === "." || name === ".." || /[\s/]/.test(name)) {
    throw new SpecError(`invalid interface name '${name}'`);
  }
  if (name.length > IFNAME_MAX_LEN) {
    throw new SpecError(`interface name '${name}' too long (max ${IFNAME_MAX_LEN})`);
  }
  return name;
}

/**
 * Returns the `ADDR[%IF]/` or `*[%IF]/` prefix of `spec`, or null if there is
 * none. A text before '/' that is not an address is no prefix (it may be a
 * target like `5000:192.0.2.5/6000`), as upstream's parse_addrifname() decides.
 */
function parseBindPrefix(spec: string): BindPrefix | null {
  const m = /^(\[[^\]]*\]|[^%/,[\]]*)(?:%([^/]*))?\//.exec(spec);
  if (!m) return null;
  const addrText = m[1]!;
  let addr: Uint8Array | null = null;
  if (addrText !== "" && addrText !== "*") {
    addr = parseInany(addrText);
    if (!addr) return null;
  }
  const ifname = m[2] === undefined ? null : checkIfname(m[2]);
  return { addr, ifname, rest: spec.slice(m[0].length) };
}

/** Returns `ranges` sorted and merged where they overlap or touch. */
function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev && r.first <= prev.last + 1) {
      out[out.length - 1] = { first: prev.first, last: Math.max(prev.last, r.last) };
    } else {
      out.push(r);
    }
  }
  return out;
}

/** Returns the pieces of `range` left after removing the (merged) `exclude` ranges. */
function subtract(range: PortRange, exclude: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  let next = range.first;
  for (const ex of exclude) {
    if (ex.last < next || ex.first > range.last) continue;
    if (ex.first > next) out.push({ first: next, last: ex.first - 1 });
    next = ex.last + 1;
  }
  if (next <= range.last) out.push({ first: next, last: range.last });
  return out;
}

function checkFamilies(bind: Uint8Array | null, to: Uint8Array | null, chunk: string): void {
  if (!to) return;
  const family = to.byteLength === 4 ? "IPv4" : "IPv6";
  if (!bind) {
    const hint = to.byteLength === 4 ? "0.0.0.0" : "[::]";
    throw new SpecError(`'${chunk}': forward from any address to ${family} target needs a listening address (${hint}/...)`);
  }
  if (bind.byteLength !== to.byteLength) {
    throw new SpecError(`'${chunk}': listening and target addresses are of different IP versions`);
  }
}

function buildRules(spec: string, opts: PortSpecOptions): PortSpecResult {
  if (spec === "none") return { ok: true, none: true, rules: [] };

  let bindAddr: Uint8Array | null = null;
  let ifname: string | null = null;
  let body = spec;
  const prefix = parseBindPrefix(spec);
  if (prefix) {
    if (!opts.allowBind) throw new SpecError("listening address not allowed here");
    ({ addr: bindAddr, ifname, rest: body } = prefix);
  } else {
    // Not a valid prefix. If it still reads like one (a '/' with no leading
    // "port:" target), name the address rather than a confusing chunk error.
    const looks = /^(\[[^\]]*\]|[^%/,]*)(?:%[^/]*)?\//.exec(spec);
    if (looks && !/^[\d-]*:/.test(spec)) {
      if (!opts.allowBind) throw new SpecError("listening address not allowed here");
      throw new SpecError(`invalid listening address '${looks[1]}'`);
    }
  }

  const chunks = body.split(",").map(parseChunk);
  let auto = false;
  let allTo: Uint8Array | null = null;
  const excluded: PortRange[] = [];
  for (const c of chunks) {
    if (c.kind === "auto") {
      if (!opts.allowAuto) throw new SpecError("'auto' port forwarding is only allowed for pasta");
      auto = true;
    } else if (c.kind === "exclude") {
      excluded.push(c.range);
    } else if (c.kind === "all") {
      allTo = c.toAddr;
    }
  }
  const exclude = mergeRanges(excluded);

  const rules: PortRule[] = [];
  let includes = 0;
  for (const c of chunks) {
    if (c.kind !== "include") continue;
    includes++;
    const span = c.range.last - c.range.first;
    if (c.to.last - c.to.first !== span) {
      throw new SpecError(
        `target range ${c.to.first}-${c.to.last} is not the same size as ${c.range.first}-${c.range.last}`,
      );
    }
    checkFamilies(bindAddr, c.toAddr, `${c.range.first}-${c.range.last}`);
    const delta = c.to.first - c.range.first;
    for (const piece of subtract(c.range, exclude)) {
      rules.push({
        bindAddr, ifname, first: piece.first, last: piece.last,
        toAddr: c.toAddr, toFirst: piece.first + delta, exclude: [], all: false, auto,
      });
    }
  }
  if (includes === 0) {
    checkFamilies(bindAddr, allTo, "all");
    rules.push({
      bindAddr, ifname, first: 1, last: PORT_MAX,
      toAddr: allTo, toFirst: 1, exclude, all: true, auto,
    });
  }
  return { ok: true, none: false, rules };
}

/**
 * Returns the forwarding rules of one -t/-u/-T/-U SPEC, `none: true` for
 * "none", or `{ ok: false, reason }` naming the bad part (e.g. "port 70000 out
 * of range (1-65535)"). Never throws. The cost is O(chunks log chunks).
 * @example parsePortSpec("22-80:32-90", { allowAuto: false, allowBind: true })
 *   // { ok: true, none: false, rules: [{ first: 22, last: 80, toFirst: 32, ... }] }
 */
export function parsePortSpec(spec: string, opts: PortSpecOptions): PortSpecResult {
  try {
    return buildRules(spec, opts);
  } catch (e) {
    if (e instanceof SpecError) return { ok: false, reason: e.message };
    throw e;
  }
}

/** Returns true if listening on `a` and on `b` can clash (upstream inany_matches()). */
function addrsOverlap(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (!a || !b) return true;
  if (a.every((x) => x === 0) || b.every((x) => x === 0)) return a.byteLength === b.byteLength;
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

/**
 * Returns the first rule of `existing` that listens on a port and address that
 * `rule` also listens on (upstream's fwd_rule_conflicts()), or null if none.
 * `all` rules are skipped: their real extent depends on the host's ephemeral
 * port range, so the forwarding layer checks those.
 */
export function findConflict(rule: PortRule, existing: readonly PortRule[]): PortRule | null {
  if (rule.all) return null;
  for (const other of existing) {
    if (other.all) continue;
    if (!addrsOverlap(rule.bindAddr, other.bindAddr)) continue;
    if (rule.last < other.first || other.last < rule.first) continue;
    return other;
  }
  return null;
}
