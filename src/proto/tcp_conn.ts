// SPDX-License-Identifier: GPL-2.0-or-later
// tcp_conn.ts - TCP connection state in typed arrays indexed by flow, event and flag bits, ISNs
//
// One entry per flow index of the shared flow table (flows.max entries), used
// only while that flow has FlowType.TCP (passt tcp_conn.h). Nothing here is an
// object per connection: each field is a typed array, and sequence numbers are
// u32 (arithmetic goes through seqAdd()/seqDiff(), modulo 2^32).
//
// Events (passt's "events and states"): the connection state is the set of
// events seen, not a state machine. Setting one of CONN_STATE_BITS replaces
// all events (see setEvent()); the others accumulate:
//
//   SOCK_ACCEPTED     host peer accepted on a -t listener, SYN sent to the
//                     guest. May: resend the SYN, take the guest's SYN-ACK.
//                     Must not: read the socket (nothing may reach the guest
//                     before it answered).
//   TAP_SYN_RCVD      guest SYN seen, non-blocking connect() under way. May:
//                     wait for EPOLLOUT. Must not: send the guest anything but
//                     RST, nor write the socket.
//   TAP_SYN_ACK_SENT  (with TAP_SYN_RCVD) connect() done, SYN-ACK sent;
//                     waiting for the guest's ACK.
//   ESTABLISHED       data may flow both ways; the following add to it:
//   SOCK_FIN_RCVD     the socket reached end of file (recv() gave 0)
//   SOCK_FIN_SENT     we called shutdown(SHUT_WR) after the guest's FIN
//   TAP_FIN_RCVD      the guest's FIN arrived in sequence (after its data)
//   TAP_FIN_SENT      our FIN went to the guest; seqToTap counts it
//   TAP_FIN_ACKED     the guest acknowledged our FIN
//
// A connection is done when TAP_FIN_ACKED and SOCK_FIN_SENT are both set, or
// on a reset from either side.
//
// Flags (not states):
//   STALLED           socket data is pending but the guest's window is full:
//                     an ACK from the guest resumes sending
//   ACK_TO_TAP_DUE    guest data was written: an ACK is queued for batchEnd
//   ACK_FORCED        (with ACK_TO_TAP_DUE) the guest sent nothing new (a
//                     retransmission, a probe): the queued ACK goes out even
//                     if it tells nothing new, and covers all the socket took
//   ACK_FROM_TAP_DUE  we sent data or SYN/FIN the guest has not acked: the
//                     retransmission timer runs
//   WND_CLOSED        the socket took less than the guest sent: the rest is
//                     in the connection's spill buffer (tcp.ts), we advertise
//                     a zero window, and EPOLLOUT writes the spill and then
//                     sends a window update
//   SNDBUF_LOW        the socket is not writable (the kernel's test: free
//                     space under half of what is queued), so the window we
//                     advertised is small: EPOLLOUT is armed, and its edge
//                     sends a window update
//   FIN_PENDING       the guest's FIN came in sequence after spilled data: it
//                     is handled once the spill is written
//   PROBE_SENT        we sent a window probe or keepalive (an ACK one below
//                     seqToTap): the guest's next ACK that carries nothing new
//                     answers it, and is no duplicate ACK
//   ACK_ALL           ACKs to the guest cover all the socket took: the host
//                     peer is local (loopback, or our own address), its RTT
//                     is low, or the kernel reports no tcpi_bytes_acked
//   ACK_LAGS          the last ACK to the guest is behind seqFromTap, waiting
//                     for the host peer's ACKs: the timer looks again every
//                     ACK_INTERVAL_MS (tcp.ts)
//   ACK_DELAYED       the ACK of a small guest segment waits for the delayed-ACK
//                     timer, in the hope that data to the guest carries it first
//   SOCK_RDHUP        the host peer's FIN reached the socket (EPOLLRDHUP): a
//                     peek that drains the socket is followed by one more,
//                     which sees the end of file (no event would tell us)

import { getrandom } from "../../syscalls/mod.ts";
import { flows } from "../flow/table.ts";

/** Connection events; see the Theory of operation block above. */
export const TcpEvent = {
  SOCK_ACCEPTED: 1 << 0,
  TAP_SYN_RCVD: 1 << 1,
  ESTABLISHED: 1 << 2,
  TAP_SYN_ACK_SENT: 1 << 3,
  SOCK_FIN_RCVD: 1 << 4,
  SOCK_FIN_SENT: 1 << 5,
  TAP_FIN_RCVD: 1 << 6,
  TAP_FIN_SENT: 1 << 7,
  TAP_FIN_ACKED: 1 << 8,
} as const;

/** Events that replace every other event when set. */
export const CONN_STATE_BITS = TcpEvent.SOCK_ACCEPTED | TcpEvent.TAP_SYN_RCVD | TcpEvent.ESTABLISHED;

/** Connection flags; see the Theory of operation block above. */
export const TcpConnFlag = {
  STALLED: 1 << 0,
  ACK_TO_TAP_DUE: 1 << 1,
  ACK_FROM_TAP_DUE: 1 << 2,
  WND_CLOSED: 1 << 3,
  SNDBUF_LOW: 1 << 4,
  FIN_PENDING: 1 << 5,
  PROBE_SENT: 1 << 6,
  ACK_FORCED: 1 << 7,
  ACK_ALL: 1 << 8,
  ACK_LAGS: 1 << 9,
  SOCK_RDHUP: 1 << 10,
  ACK_DELAYED: 1 << 11,
} as const;

/** Returns the event bits as text for logs, e.g. "ESTABLISHED|TAP_FIN_RCVD" ("CLOSED" for none). */
export function tcpEventsName(events: number): string {
  let text = "";
  for (const name in TcpEvent) {
    if (events & TcpEvent[name as keyof typeof TcpEvent]) text += text ? `|${name}` : name;
  }
  return text || "CLOSED";
}

/**
 * Per-connection state, one entry per flow index. Every field is documented
 * with its units; "tap" is the guest side, "sock" the host socket.
 */
export class TcpConns {
  /** Host socket descriptor, -1 when the entry is not a live TCP connection. */
  readonly sock: Int32Array;
  /** Per-connection timerfd (EpollType.TCP_TIMER), -1 until first needed. */
  readonly timer: Int32Array;
  /** TcpEvent bits. */
  readonly events: Uint16Array;
  /** TcpConnFlag bits. */
  readonly flags: Uint16Array;
  /** 1 if the guest side is IPv6, 0 for IPv4. */
  readonly v6: Uint8Array;
  /** Guest-side addresses, 32 bytes per entry: the guest's (0-15), then the peer's as the guest sees it (16-31), inany. */
  readonly tapAddrs: Uint8Array;
  /** Guest's port. */
  readonly guestPort: Uint16Array;
  /** Peer's port as the guest sees it (our port on the tap side). */
  readonly peerPort: Uint16Array;
  /** Next sequence number we send to the guest. */
  readonly seqToTap: Uint32Array;
  /** Highest acknowledgment number received from the guest. */
  readonly seqAckFromTap: Uint32Array;
  /** Next sequence number expected from the guest (all before it was written to the socket). */
  readonly seqFromTap: Uint32Array;
  /** Last acknowledgment number sent to the guest. */
  readonly seqAckToTap: Uint32Array;
  /** Guest's initial sequence number. */
  readonly seqInitFromTap: Uint32Array;
  /**
   * Sequence number the socket's tcpi_bytes_acked counts from: what the host
   * peer acknowledged is seqAckBase + tcpi_bytes_acked (mod 2^32). Measured
   * when the connection is established, as the kernel counts the SYN of a
   * connect()ed socket in tcpi_bytes_acked, and not that of an accepted one.
   */
  readonly seqAckBase: Uint32Array;
  /** Last window received from the guest, unscaled (as carried). */
  readonly wndFromTap: Uint16Array;
  /** Guest's window scale shift (0 if it sent none). */
  readonly wsFromTap: Uint8Array;
  /** Last window sent to the guest, unscaled (as carried). */
  readonly wndToTap: Uint16Array;
  /** Our window scale shift towards the guest (0 if the guest does not scale). */
  readonly wsToTap: Uint8Array;
  /** Size of the socket's send buffer (SK_MEMINFO_SNDBUF) when last read, in bytes; 0 if never. */
  readonly sndbuf: Uint32Array;
  /**
   * When the timer's wait for its current event (retransmission, FIN timeout,
   * inactivity, keepalive) ends, in ms on the performance.now() clock. ACK_LAGS
   * checks fire in between without moving it.
   */
  readonly timerAtMs: Float64Array;
  /**
   * When the timerfd is set to fire, on the same clock, or 0 if it is not set. A deadline
   * that moves later (every ACK restarts the retransmission timeout) leaves the timerfd
   * as it is: it fires early, and the handler sets it again for what is left.
   */
  readonly timerArmedAtMs: Float64Array;
  /** Largest payload we put in one segment to the guest, in bytes. */
  readonly mssToTap: Uint16Array;
  /** Duplicate ACKs in a row from the guest for seqAckFromTap. */
  readonly dupAcks: Uint8Array;
  /** Bytes from the guest after seqFromTap held in the spill buffer (the socket had no room), unacknowledged. */
  readonly spillLen: Uint32Array;
  /** Retransmissions since the guest last acknowledged new data (or SYN retries). */
  readonly retries: Uint8Array;
  /** Last activity on either side, in ms on the performance.now() clock. */
  readonly lastActivityMs: Float64Array;
  /**
   * Start of the guest side's current silence, in ms on the performance.now()
   * clock: its last segment, or our last keepalive to it if that came later.
   */
  readonly tapQuietSinceMs: Float64Array;

  constructor(readonly max: number) {
    this.sock = new Int32Array(max).fill(-1);
    this.timer = new Int32Array(max).fill(-1);
    this.events = new Uint16Array(max);
    this.flags = new Uint16Array(max);
    this.v6 = new Uint8Array(max);
    this.tapAddrs = new Uint8Array(max * 32);
    this.guestPort = new Uint16Array(max);
    this.peerPort = new Uint16Array(max);
    this.seqToTap = new Uint32Array(max);
    this.seqAckFromTap = new Uint32Array(max);
    this.seqFromTap = new Uint32Array(max);
    this.seqAckToTap = new Uint32Array(max);
    this.seqInitFromTap = new Uint32Array(max);
    this.seqAckBase = new Uint32Array(max);
    this.wndFromTap = new Uint16Array(max);
    this.wsFromTap = new Uint8Array(max);
    this.wndToTap = new Uint16Array(max);
    this.wsToTap = new Uint8Array(max);
    this.mssToTap = new Uint16Array(max);
    this.sndbuf = new Uint32Array(max);
    this.timerAtMs = new Float64Array(max);
    this.timerArmedAtMs = new Float64Array(max);
    this.dupAcks = new Uint8Array(max);
    this.spillLen = new Uint32Array(max);
    this.retries = new Uint8Array(max);
    this.lastActivityMs = new Float64Array(max);
    this.tapQuietSinceMs = new Float64Array(max);
  }

  /** Resets entry `i` to a fresh connection with no socket, no timer and no events. */
  reset(i: number): void {
    this.sock[i] = -1;
    this.timer[i] = -1;
    this.events[i] = 0;
    this.flags[i] = 0;
    this.v6[i] = 0;
    this.tapAddrs.fill(0, i * 32, i * 32 + 32);
    this.guestPort[i] = this.peerPort[i] = 0;
    this.seqToTap[i] = this.seqAckFromTap[i] = this.seqFromTap[i] = this.seqAckToTap[i] = this.seqInitFromTap[i] = 0;
    this.seqAckBase[i] = this.sndbuf[i] = 0;
    this.timerAtMs[i] = this.timerArmedAtMs[i] = 0;
    this.wndFromTap[i] = this.wndToTap[i] = 0;
    this.wsFromTap[i] = this.wsToTap[i] = 0;
    this.mssToTap[i] = 0;
    this.dupAcks[i] = this.retries[i] = 0;
    this.spillLen[i] = 0;
    this.lastActivityMs[i] = this.tapQuietSinceMs[i] = 0;
  }

  /**
   * Sets event `ev` on connection `i`: one of CONN_STATE_BITS replaces all
   * events, others are added. Returns whether it was newly set.
   */
  setEvent(i: number, ev: number): boolean {
    const cur = this.events[i]!;
    if (cur & ev) return false;
    this.events[i] = ev & CONN_STATE_BITS ? ev : cur | ev;
    return true;
  }

  /** Returns whether every event bit of `set` is set on connection `i`. */
  has(i: number, set: number): boolean {
    return (this.events[i]! & set) === set;
  }
}

/** The connection table, one entry per flow of the shared flow table. */
export const conns: TcpConns = new TcpConns(flows.max);

// Epoll references ---------------------------------------------------------------
//
// A connection's socket and timer are registered with a reference of its flow
// index and, in the bits the flow index leaves free of the loop's 24, a
// generation that changes each time the entry is reused. Without it, an event
// read in the same epoll batch as the close of a connection could be handed to
// a new connection that got the same flow index and, since the kernel reuses
// the lowest free descriptor, the same fd number: a reset was taken for the
// new connection's failed connect(), and the guest's SYN answered with RST.

const INDEX_BITS = Math.max(1, Math.ceil(Math.log2(flows.max)));
const GEN_BITS = Math.max(0, 24 - INDEX_BITS);
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** Generation of each entry, advanced by tcpConnNewGen(). Not cleared by reset(). */
const gens = new Uint8Array(flows.max);

/** Advances the generation of entry `i`: call it when a new connection takes the entry. */
export function tcpConnNewGen(i: number): void {
  gens[i] = (gens[i]! + 1) & ((1 << Math.min(GEN_BITS, 8)) - 1);
}

/** Returns the epoll index for entry `i`: its flow index and generation. */
export function tcpConnRef(i: number): number {
  return GEN_BITS === 0 ? i : i | (gens[i]! << INDEX_BITS);
}

/** Returns the entry an epoll index refers to, or -1 if that entry has moved on to a newer connection. */
export function tcpConnFromRef(ref: number): number {
  const i = ref & INDEX_MASK;
  return GEN_BITS === 0 || ref >>> INDEX_BITS === gens[i] ? i : -1;
}

/** Returns (a + n) modulo 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** Returns a - b as a signed 32-bit difference (positive if a is after b, RFC 1982 style). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

// Initial sequence numbers (RFC 6528) -----------------------------------------
//
// RFC 6528 section 3: "ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey) where M is the 4 microsecond timer, and F() is a pseudorandom
// function (PRF) of the connection-id". F here is a HalfSipHash-2-4 style
// keyed hash (32-bit words, a 64-bit key from getrandom at load) over both
// addresses (inany, 16 bytes each) and both ports; M is performance.now() in
// 4 µs ticks, modulo 2^32.

const isnKey = new Uint32Array(2);
{
  const bytes = new Uint8Array(isnKey.buffer);
  const n = getrandom(bytes);
  if (n !== bytes.byteLength) throw new Error(`getrandom for the TCP ISN key: ${n}`);
}

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** Scratch state of the hash: v0..v3. */
const hv = new Int32Array(4);

function sipRound(): void {
  let v0 = hv[0]!, v1 = hv[1]!, v2 = hv[2]!, v3 = hv[3]!;
  v0 = (v0 + v1) | 0; v1 = rotl(v1, 5); v1 ^= v0; v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0; v3 = rotl(v3, 8); v3 ^= v2;
  v0 = (v0 + v3) | 0; v3 = rotl(v3, 7); v3 ^= v0;
  v2 = (v2 + v1) | 0; v1 = rotl(v1, 13); v1 ^= v2; v2 = rotl(v2, 16);
  hv[0] = v0; hv[1] = v1; hv[2] = v2; hv[3] = v3;
}

function sipWord(m: number): void {
  hv[3]! ^= m;
  sipRound();
  sipRound();
  hv[0]! ^= m;
}

function word(a: Uint8Array, off: number): number {
  return a[off]! | (a[off + 1]! << 8) | (a[off + 2]! << 16) | (a[off + 3]! << 24);
}

/**
 * Returns the keyed 32-bit hash of the connection-id: the two 16-byte inany
 * addresses at `a[aOff]` and `b[bOff]` and the two ports. Deterministic for a
 * given key (process lifetime); never allocates.
 */
export function tcpIsnHash(a: Uint8Array, aOff: number, aPort: number, b: Uint8Array, bOff: number, bPort: number, key: Uint32Array = isnKey): number {
  const k0 = key[0]! | 0, k1 = key[1]! | 0;
  hv[0] = k0;
  hv[1] = k1;
  hv[2] = 0x6c796765 ^ k0;
  hv[3] = 0x74656462 ^ k1;
  for (let i = 0; i < 16; i += 4) sipWord(word(a, aOff + i));
  for (let i = 0; i < 16; i += 4) sipWord(word(b, bOff + i));
  sipWord(((aPort & 0xffff) << 16) | (bPort & 0xffff));
  sipWord(36 << 24); // final block: total length in the top byte
  hv[2]! ^= 0xff;
  sipRound();
  sipRound();
  sipRound();
  sipRound();
  return (hv[1]! ^ hv[3]!) >>> 0;
}

/**
 * Returns an initial sequence number for a connection between the addresses
 * and ports given (RFC 6528): the keyed hash plus a 4 µs clock, modulo 2^32.
 */
export function tcpIsn(a: Uint8Array, aOff: number, aPort: number, b: Uint8Array, bOff: number, bPort: number): number {
  const m = Math.floor(performance.now() * 250);
  return (tcpIsnHash(a, aOff, aPort, b, bOff, bPort) + m) >>> 0;
}
