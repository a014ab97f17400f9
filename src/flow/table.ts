// SPDX-License-Identifier: GPL-2.0-or-later
// table.ts - the flow table: every TCP, spliced TCP, ping and UDP flow, in typed arrays
//
// Theory of operation
//
// Goal: one fixed-size table for all L4 flows (passt flow.c, flow_table.h),
// with no object per flow, so that 65,536 or more concurrent flows cost the
// garbage collector nothing. A flow is an index 0..max-1; every field lives in
// a typed array indexed by that number (or by a side index, below).
//
// Sides: a flow joins two endpoints. INISIDE (0) is the side that initiated
// it (the guest for outbound traffic, a host peer for -t/-u), TGTSIDE (1) the
// side it was forwarded to. Each side has an interface (Pif: TAP, HOST,
// SPLICE) and four addresses as seen from that interface:
//   eaddr:eport  the endpoint, the remote peer on that side
//   oaddr:oport  our address on that side (what the peer talks to)
// A "sidx" names one side of one flow: flow * 2 + side, so it fits an epoll
// reference index (below 2^24) and packs into one number.
//
// Lookup: a hash table of 2^k >= 2 * max slots maps (protocol, pif, eaddr,
// eport, oaddr, oport) to a sidx, with linear probing and backward-shift
// deletion (no tombstones, so lookups never degrade with churn). The hash is
// a multiply-xorshift mix of the whole key, keyed by 128 random bits from
// getrandom(2) so that a guest or remote peer cannot aim for collisions
// without knowing the key (upstream uses SipHash for the same reason; this mix
// is weaker cryptographically but costs a few multiplications and never
// allocates). A side is in the hash only between hashInsert() and
// hashRemove() (or free(), which removes what is left).
//
// Allocation: a stack of free indices gives O(1) alloc() and free(), lowest
// indices first at start. A bitmap with one bit per flow in use lets scans
// (expire(), runTimers()) skip 32 free flows per word, as upstream skips free
// clusters.
//
// Timers: each flow has `deadlineMs` (milliseconds on the performance.now()
// clock; 0: none). expire(now, cb) calls cb for every flow whose deadline has
// passed; runTimers(now) does so with the handler registered per FlowType,
// at most once per FLOW_TIMER_INTERVAL_MS, and is meant to run once per loop
// turn (the loop's onTurn hook; the loop waits at most 1 s).
//
// Per-protocol state: this table holds only what every flow has. A protocol
// module keeps its own state in typed arrays of `max` entries indexed by the
// flow index (`sock = new Int32Array(flows.max)`), initialises its entries when
// it creates a flow, and must not read them for flows of another type. It
// owns the flow from setType() until it calls free(), after closing its
// sockets. The table never clears protocol arrays.
//
// Limits: max flows (FLOW_MAX by default, 131,072 as upstream's 2^17); when
// full, alloc() returns -1 and the caller drops the packet or connection.

import { getrandom } from "../../syscalls/mod.ts";
import { INANY_LEN } from "../inany.ts";
import { IpProtocol } from "../wire/ipv4.ts";

/** Default number of flows, as upstream's FLOW_MAX (2^17). */
export const FLOW_MAX = 131072;

/** Minimum interval between two timer scans of the whole table, in ms (upstream FLOW_TIMER_INTERVAL). */
export const FLOW_TIMER_INTERVAL_MS = 1000;

/** Initiating side of a flow. */
export const INISIDE = 0;
/** Target side of a flow. */
export const TGTSIDE = 1;

/** What kind of flow an entry is (upstream `enum flow_type`). NONE while not yet typed. */
export const FlowType = {
  NONE: 0,
  /** TCP between a guest (tap) socket-less side and a host socket. */
  TCP: 1,
  /** TCP between two sockets, spliced (pasta loopback path). */
  TCP_SPLICE: 2,
  /** ICMP echo over an IPv4 ping socket. */
  PING4: 3,
  /** ICMPv6 echo over an IPv6 ping socket. */
  PING6: 4,
  /** UDP, any direction. */
  UDP: 5,
} as const;
export type FlowType = (typeof FlowType)[keyof typeof FlowType];

const FLOW_TYPE_NAMES = ["NONE", "TCP", "TCP_SPLICE", "PING4", "PING6", "UDP"];

/** Returns the name of a flow type for logs, or "type N". */
export function flowTypeName(type: number): string {
  return FLOW_TYPE_NAMES[type] ?? `type ${type}`;
}

/**
 * Life cycle of a flow entry (upstream flow.h). A flow moves forward only,
 * then back to FREE.
 */
export const FlowState = {
  /** Unused. May be allocated; no field may be read. */
  FREE: 0,
  /** Just allocated: may get its initiating side; not in the hash, not typed, no timer. */
  NEW: 1,
  /** Initiating side set: NAT may now choose the target side; not hashed yet. */
  INI: 2,
  /** Both sides set: may be given a type; the caller may still abandon it with free(). */
  TGT: 3,
  /** Typed: the protocol module owns its state arrays and may insert sides in the hash. */
  TYPED: 4,
  /** Fully set up: events and timers may run for it; only its protocol frees it. */
  ACTIVE: 5,
} as const;
export type FlowState = (typeof FlowState)[keyof typeof FlowState];

/** Interface a flow side is on (upstream `enum pif_type`). */
export const Pif = {
  NONE: 0,
  /** Host sockets in our own namespace. */
  HOST: 1,
  /** The guest, through the tap device or the qemu socket. */
  TAP: 2,
  /** Sockets inside the pasta namespace (spliced paths). */
  SPLICE: 3,
} as const;
export type Pif = (typeof Pif)[keyof typeof Pif];

/** Returns the flow index of side index `sidx`. */
export function sidxFlow(sidx: number): number {
  return sidx >>> 1;
}
/** Returns the side (INISIDE or TGTSIDE) of side index `sidx`. */
export function sidxSide(sidx: number): number {
  return sidx & 1;
}
/** Returns the side index of `side` of flow `flow`. */
export function sidxOf(flow: number, side: number): number {
  return flow * 2 + side;
}

/** Returns the IP protocol number flows of `type` carry (0 for NONE). */
export function flowProto(type: number): number {
  switch (type) {
    case FlowType.TCP:
    case FlowType.TCP_SPLICE:
      return IpProtocol.TCP;
    case FlowType.PING4:
      return IpProtocol.ICMP;
    case FlowType.PING6:
      return IpProtocol.ICMPV6;
    case FlowType.UDP:
      return IpProtocol.UDP;
    default:
      return 0;
  }
}

/** Called by expire() and runTimers() for a flow whose deadline passed. */
export type ExpireHandler = (flow: number, type: number) => void;

/** Bytes per side in `addrs`: oaddr then eaddr, 16 bytes each. */
const SIDE_ADDR_BYTES = 2 * INANY_LEN;

/**
 * The flow table. Use the `flows` singleton; construct others only in tests.
 * @example
 * const f = flows.alloc();
 * if (f < 0) return stats.drop("flowTableFull");
 * flows.setSide(f, INISIDE, Pif.TAP, guestAddr, sport, dstAddr, dport);
 */
export class FlowTable {
  /** Number of entries. */
  readonly max: number;
  /** FlowType per flow. */
  readonly type: Uint8Array;
  /** FlowState per flow. */
  readonly state: Uint8Array;
  /** IP protocol number per flow, set from the type (the hash key's protocol). */
  readonly proto: Uint8Array;
  /** Pif per side (index: sidx). */
  readonly pif: Uint8Array;
  /**
   * Addresses per side, 32 bytes per sidx: oaddr (inany) at oaddrOff(sidx),
   * eaddr (inany) at eaddrOff(sidx). Read in place; do not keep subarrays.
   */
  readonly addrs: Uint8Array;
  /** Our port per side (index: sidx), host number. */
  readonly oport: Uint16Array;
  /** Endpoint port per side (index: sidx), host number. */
  readonly eport: Uint16Array;
  /** Deadline per flow in ms on the performance.now() clock; 0: no deadline. */
  readonly deadlineMs: Float64Array;
  /** Bit 0: INISIDE is in the hash; bit 1: TGTSIDE is. */
  private readonly hashed: Uint8Array;
  /** One bit per flow not FREE. */
  private readonly used: Uint32Array;
  /** Free flow indices; the next alloc() takes freeStack[freeTop - 1]. */
  private readonly freeStack: Int32Array;
  private freeTop: number;
  /** Hash slots: a sidx, or -1 for empty. Length a power of two. */
  private readonly slots: Int32Array;
  private readonly slotMask: number;
  private readonly k0: number;
  private readonly k1: number;
  private readonly k2: number;
  private readonly k3: number;
  private readonly expireHandlers: (ExpireHandler | null)[] = [];
  private lastTimerMs = -Infinity;
  private active = 0;

  /**
   * Creates a table of `max` flows (a multiple of 32, at most 2^23 so a sidx
   * fits an epoll index). `key` (4 words) fixes the hash key for tests;
   * by default it comes from getrandom(2). Throws RangeError on a bad size.
   * @syscalls getrandom
   */
  constructor(max = FLOW_MAX, key?: Uint32Array) {
    if (!Number.isInteger(max) || max <= 0 || max % 32 !== 0 || max > 1 << 23) {
      throw new RangeError(`FlowTable: bad size ${max}`);
    }
    this.max = max;
    this.type = new Uint8Array(max);
    this.state = new Uint8Array(max);
    this.proto = new Uint8Array(max);
    this.pif = new Uint8Array(2 * max);
    this.addrs = new Uint8Array(2 * max * SIDE_ADDR_BYTES);
    this.oport = new Uint16Array(2 * max);
    this.eport = new Uint16Array(2 * max);
    this.deadlineMs = new Float64Array(max);
    this.hashed = new Uint8Array(max);
    this.used = new Uint32Array(max / 32);
    this.freeStack = new Int32Array(max);
    for (let i = 0; i < max; i++) this.freeStack[i] = max - 1 - i;
    this.freeTop = max;
    let size = 1;
    while (size < 2 * max) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.slotMask = size - 1;
    let k = key;
    if (k === undefined) {
      k = new Uint32Array(4);
      const bytes = new Uint8Array(k.buffer);
      if (getrandom(bytes) !== 16) crypto.getRandomValues(k);
    }
    this.k0 = k[0]! | 0;
    this.k1 = k[1]! | 0;
    this.k2 = k[2]! | 0;
    this.k3 = k[3]! | 0;
  }

  /** Returns the number of flows not FREE. */
  get count(): number {
    return this.active;
  }

  /** Returns the offset of side `sidx`'s oaddr in `addrs`. */
  oaddrOff(sidx: number): number {
    return sidx * SIDE_ADDR_BYTES;
  }
  /** Returns the offset of side `sidx`'s eaddr in `addrs`. */
  eaddrOff(sidx: number): number {
    return sidx * SIDE_ADDR_BYTES + INANY_LEN;
  }

  /**
   * Returns a new flow index in state NEW with type NONE, no deadline and both
   * sides cleared, or -1 if the table is full. O(1).
   */
  alloc(): number {
    if (this.freeTop === 0) return -1;
    const f = this.freeStack[--this.freeTop]!;
    this.used[f >>> 5]! |= 1 << (f & 31);
    this.state[f] = FlowState.NEW;
    this.type[f] = FlowType.NONE;
    this.proto[f] = 0;
    this.deadlineMs[f] = 0;
    this.hashed[f] = 0;
    for (let side = 0; side < 2; side++) {
      const s = 2 * f + side;
      this.pif[s] = Pif.NONE;
      this.oport[s] = 0;
      this.eport[s] = 0;
      this.addrs.fill(0, s * SIDE_ADDR_BYTES, (s + 1) * SIDE_ADDR_BYTES);
    }
    this.active++;
    return f;
  }

  /**
   * Returns flow `f` to the free pool (FREE), first removing any of its sides
   * still in the hash. Freeing a FREE flow is a bug and throws. O(1).
   */
  free(f: number): void {
    if (this.state[f] === FlowState.FREE || f < 0 || f >= this.max) throw new RangeError(`flow ${f} is not in use`);
    if (this.hashed[f]! & 1) this.hashRemove(2 * f);
    if (this.hashed[f]! & 2) this.hashRemove(2 * f + 1);
    this.state[f] = FlowState.FREE;
    this.type[f] = FlowType.NONE;
    this.deadlineMs[f] = 0;
    this.used[f >>> 5]! &= ~(1 << (f & 31));
    this.freeStack[this.freeTop++] = f;
    this.active--;
  }

  /** Returns whether flow `f` is in use (not FREE). */
  inUse(f: number): boolean {
    return f >= 0 && f < this.max && this.state[f] !== FlowState.FREE;
  }

  /**
   * Sets side `side` of flow `f`: its interface, the endpoint's address and
   * port, and ours (addresses as 16-byte inany, read from `eaddr[eOff]` and
   * `oaddr[oOff]`). Setting INISIDE moves a NEW flow to INI, TGTSIDE moves an
   * INI flow to TGT. Must not be called on a side that is in the hash.
   */
  setSide(
    f: number, side: number, pif: number,
    eaddr: Uint8Array, eport: number, oaddr: Uint8Array, oport: number,
    eOff = 0, oOff = 0,
  ): void {
    const s = 2 * f + side;
    this.pif[s] = pif;
    this.eport[s] = eport;
    this.oport[s] = oport;
    const base = s * SIDE_ADDR_BYTES;
    for (let i = 0; i < INANY_LEN; i++) {
      this.addrs[base + i] = oaddr[oOff + i]!;
      this.addrs[base + INANY_LEN + i] = eaddr[eOff + i]!;
    }
    const st = this.state[f]!;
    if (side === INISIDE && st === FlowState.NEW) this.state[f] = FlowState.INI;
    else if (side === TGTSIDE && st === FlowState.INI) this.state[f] = FlowState.TGT;
  }

  /** Gives flow `f` its type (and hash protocol) and moves it to TYPED. */
  setType(f: number, type: number): void {
    this.type[f] = type;
    this.proto[f] = flowProto(type);
    this.state[f] = FlowState.TYPED;
  }

  /** Moves flow `f` to ACTIVE: its protocol has finished setting it up. */
  activate(f: number): void {
    this.state[f] = FlowState.ACTIVE;
  }

  /** Copies side `sidx`'s oaddr into `out[off]`. */
  copyOaddr(sidx: number, out: Uint8Array, off = 0): void {
    const base = sidx * SIDE_ADDR_BYTES;
    for (let i = 0; i < INANY_LEN; i++) out[off + i] = this.addrs[base + i]!;
  }
  /** Copies side `sidx`'s eaddr into `out[off]`. */
  copyEaddr(sidx: number, out: Uint8Array, off = 0): void {
    const base = sidx * SIDE_ADDR_BYTES + INANY_LEN;
    for (let i = 0; i < INANY_LEN; i++) out[off + i] = this.addrs[base + i]!;
  }

  // Hash ---------------------------------------------------------------------

  /** Returns the 32-bit keyed hash of a lookup key; addresses are read at the given offsets. */
  private hashKey(
    proto: number, pif: number,
    eaddr: Uint8Array, eOff: number, eport: number,
    oaddr: Uint8Array, oOff: number, oport: number,
  ): number {
    let h = this.k0 ^ ((proto << 8) | pif);
    let h2 = this.k1 ^ ((eport << 16) | oport);
    for (let i = 0; i < 16; i += 4) {
      const we = (eaddr[eOff + i]! << 24) | (eaddr[eOff + i + 1]! << 16) | (eaddr[eOff + i + 2]! << 8) | eaddr[eOff + i + 3]!;
      const wo = (oaddr[oOff + i]! << 24) | (oaddr[oOff + i + 1]! << 16) | (oaddr[oOff + i + 2]! << 8) | oaddr[oOff + i + 3]!;
      h = Math.imul(h ^ (we ^ this.k2), 0x9e3779b1);
      h = (h << 15) | (h >>> 17);
      h2 = Math.imul(h2 ^ (wo ^ this.k3), 0x85ebca6b);
      h2 = (h2 << 13) | (h2 >>> 19);
    }
    h ^= h2;
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /** Returns the home slot of the key stored for side `sidx`. */
  private homeOf(sidx: number): number {
    const base = sidx * SIDE_ADDR_BYTES;
    return this.hashKey(
      this.proto[sidx >>> 1]!, this.pif[sidx]!,
      this.addrs, base + INANY_LEN, this.eport[sidx]!,
      this.addrs, base, this.oport[sidx]!,
    ) & this.slotMask;
  }

  /**
   * Returns the sidx whose side matches (proto, pif, eaddr:eport, oaddr:oport)
   * among hashed sides, or -1 if none does. Addresses are 16-byte inany read
   * at `eOff` / `oOff`. Expected O(1); never allocates.
   */
  lookup(
    proto: number, pif: number,
    eaddr: Uint8Array, eport: number, oaddr: Uint8Array, oport: number,
    eOff = 0, oOff = 0,
  ): number {
    let slot = this.hashKey(proto, pif, eaddr, eOff, eport, oaddr, oOff, oport) & this.slotMask;
    const slots = this.slots, addrs = this.addrs;
    for (;;) {
      const s = slots[slot]!;
      if (s < 0) return -1;
      if (this.pif[s] === pif && this.eport[s] === eport && this.oport[s] === oport && this.proto[s >>> 1] === proto) {
        const base = s * SIDE_ADDR_BYTES;
        let same = true;
        for (let i = 0; i < INANY_LEN; i++) {
          if (addrs[base + i] !== oaddr[oOff + i] || addrs[base + INANY_LEN + i] !== eaddr[eOff + i]) {
            same = false;
            break;
          }
        }
        if (same) return s;
      }
      slot = (slot + 1) & this.slotMask;
    }
  }

  /**
   * Inserts side `sidx` in the hash under its current type, pif, addresses
   * and ports. The flow must be TYPED or ACTIVE (so its protocol is known),
   * and the side not already hashed; both are bugs and throw. Returns `sidx`.
   */
  hashInsert(sidx: number): number {
    const f = sidx >>> 1, bit = 1 << (sidx & 1);
    if (this.state[f]! < FlowState.TYPED) throw new RangeError(`hashInsert: flow ${f} has no type yet`);
    if (this.hashed[f]! & bit) throw new RangeError(`hashInsert: side ${sidx} already hashed`);
    let slot = this.homeOf(sidx);
    while (this.slots[slot]! >= 0) slot = (slot + 1) & this.slotMask;
    this.slots[slot] = sidx;
    this.hashed[f]! |= bit;
    return sidx;
  }

  /**
   * Removes side `sidx` from the hash (backward-shift deletion, so no
   * tombstones remain); does nothing if it is not hashed. Its fields must not
   * have changed since hashInsert().
   */
  hashRemove(sidx: number): void {
    const f = sidx >>> 1, bit = 1 << (sidx & 1);
    if (!(this.hashed[f]! & bit)) return;
    const mask = this.slotMask, slots = this.slots;
    let slot = this.homeOf(sidx);
    while (slots[slot] !== sidx) slot = (slot + 1) & mask;
    // Pull back later entries of the same probe run whose home is not in (hole, j].
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const s = slots[j]!;
      if (s < 0) break;
      const home = this.homeOf(s);
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        slots[hole] = s;
        hole = j;
      }
    }
    slots[hole] = -1;
    this.hashed[f]! &= ~bit;
  }

  /** Returns whether side `sidx` is in the hash. */
  isHashed(sidx: number): boolean {
    return (this.hashed[sidx >>> 1]! & (1 << (sidx & 1))) !== 0;
  }

  // Timers -------------------------------------------------------------------

  /**
   * Calls `cb(flow, type)` for every flow in use whose deadline (non-zero) is
   * at or before `nowMs`, in index order, and returns how many it called.
   * The callback may free the flow or set a new deadline. Cost: one word test
   * per 32 flows plus one test per flow in use.
   */
  expire(nowMs: number, cb: ExpireHandler): number {
    let n = 0;
    const used = this.used, deadline = this.deadlineMs;
    for (let w = 0; w < used.length; w++) {
      let bits = used[w]!;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits &= bits - 1;
        const f = (w << 5) | b;
        const d = deadline[f]!;
        if (d > 0 && d <= nowMs && this.state[f] !== FlowState.FREE) {
          n++;
          cb(f, this.type[f]!);
        }
      }
    }
    return n;
  }

  /** Registers the handler runTimers() calls for expired flows of `type` (replacing any). */
  onExpire(type: number, handler: ExpireHandler | null): void {
    this.expireHandlers[type] = handler;
  }

  /**
   * Runs expire() with the handlers registered per type, at most once per
   * FLOW_TIMER_INTERVAL_MS (call it every loop turn), and returns how many
   * flows expired (0 when it did not scan). Expired flows of a type without a
   * handler get their deadline cleared.
   */
  runTimers(nowMs: number): number {
    if (nowMs - this.lastTimerMs < FLOW_TIMER_INTERVAL_MS) return 0;
    this.lastTimerMs = nowMs;
    return this.expire(nowMs, this.dispatchExpired);
  }

  private readonly dispatchExpired: ExpireHandler = (flow, type) => {
    const h = this.expireHandlers[type];
    if (h) h(flow, type);
    else this.deadlineMs[flow] = 0;
  };
}

/** The process's flow table, shared by tcp, tcp_splice, icmp and udp. */
export const flows: FlowTable = new FlowTable();
