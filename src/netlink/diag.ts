// SPDX-License-Identifier: GPL-2.0-or-later
// diag.ts - sock_diag (NETLINK_SOCK_DIAG) dumps of inet sockets over caller-owned buffers (no I/O)
//
// A dump request is one message: an nlmsghdr (SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP)
// and an inet_diag_req_v2 naming the family, the protocol and a mask of states (1 << TCP_*).
// The kernel answers with datagrams of whole messages, one per socket (the same type: an
// inet_diag_msg, then attributes we do not ask for and skip), and ends the dump with
// NLMSG_DONE, whose payload is 0 or the -errno that stopped the dump (-ENOENT: no diag
// handler for that protocol, tcp_diag missing). A request no family handler serves (inet_diag
// missing) or that is malformed is refused with NLMSG_ERROR instead. Only sockets of the
// requested family come back: a dual-stack IPv6 listener is in the AF_INET6 dump alone.
//
// Host byte order, except ports and addresses (network order). The offsets are
// syscalls/structs.ts's, checked against gcc by tests/unit/syscalls/layout.test.ts:
//
//   nlmsghdr (16)             inet_diag_req_v2 (56)          inet_diag_msg (72)
//   0  u32 len                0  u8 family, u8 protocol      0  u8 family, state, timer, retrans
//   4  u16 type, u16 flags    2  u8 ext, u8 pad              4  inet_diag_sockid (48):
//   8  u32 seq                4  u32 states (1 << TCP_*)        4 be16 sport, 6 be16 dport,
//   12 u32 pid                8  inet_diag_sockid (48),         8 src[16], 24 dst[16],
//                                all zero for a dump            40 u32 if, 44 u32 cookie[2]
//                                                            52 u32 expires, rqueue, wqueue,
//                                                               uid, inode

import { SOCK_DIAG_BY_FAMILY } from "../../syscalls/constants.ts";
import { Errno } from "../../syscalls/errno.ts";
import type { PortSet } from "../fwd_ports.ts";
import { INET_DIAG_MSG, INET_DIAG_REQ_V2, NLMSGERR, NLMSGHDR } from "../../syscalls/structs.ts";
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP, NLM_F_REQUEST, nlAlign } from "./msg.ts";

/** Length of a dump request: nlmsghdr and inet_diag_req_v2 (72 bytes). */
export const INET_DIAG_DUMP_LEN = NLMSGHDR.SIZE + INET_DIAG_REQ_V2.SIZE;

/** What to dump: sockets of one family and protocol whose state is in a mask. */
export interface InetDiagDumpSpec {
  /** AF_INET or AF_INET6. */
  readonly family: number;
  /** IPPROTO_TCP, IPPROTO_UDP... */
  readonly protocol: number;
  /** Bit (1 << state) for each TCP_* state wanted. */
  readonly states: number;
}

/**
 * Writes the request for dump `spec` into `buf` and returns its length (INET_DIAG_DUMP_LEN).
 * Throws RangeError if `buf` is shorter: the buffer is ours, so that is a bug. Only the
 * sequence number changes between two dumps of the same spec: rewrite it in place at
 * NLMSGHDR.SEQ rather than building again.
 * @example
 * const req = new Uint8Array(INET_DIAG_DUMP_LEN);
 * buildInetDiagDump(req, 1, { family: AF_INET, protocol: IPPROTO_TCP, states: 1 << TCP_LISTEN });
 */
export function buildInetDiagDump(buf: Uint8Array, seq: number, spec: InetDiagDumpSpec): number {
  if (buf.byteLength < INET_DIAG_DUMP_LEN) {
    throw new RangeError(`sock_diag: a dump request needs ${INET_DIAG_DUMP_LEN} bytes, buffer has ${buf.byteLength}`);
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, INET_DIAG_DUMP_LEN);
  buf.fill(0, 0, INET_DIAG_DUMP_LEN);
  dv.setUint32(NLMSGHDR.LEN, INET_DIAG_DUMP_LEN, true);
  dv.setUint16(NLMSGHDR.TYPE, SOCK_DIAG_BY_FAMILY, true);
  dv.setUint16(NLMSGHDR.FLAGS, NLM_F_REQUEST | NLM_F_DUMP, true);
  dv.setUint32(NLMSGHDR.SEQ, seq >>> 0, true);
  const req = NLMSGHDR.SIZE;
  buf[req + INET_DIAG_REQ_V2.FAMILY] = spec.family;
  buf[req + INET_DIAG_REQ_V2.PROTOCOL] = spec.protocol;
  dv.setUint32(req + INET_DIAG_REQ_V2.STATES, spec.states >>> 0, true);
  return INET_DIAG_DUMP_LEN;
}

/** InetDiagReply.status values besides a negative errno. */
export const DiagStatus = {
  /** The reply goes on: read the next datagram. */
  MORE: 1,
  /** NLMSG_DONE came with no error: the dump is complete. */
  DONE: 0,
} as const;

/** Offset of the local port in a reply message: header, then inet_diag_msg's id.idiag_sport. */
const MSG_SPORT = NLMSGHDR.SIZE + INET_DIAG_MSG.SPORT;
const MSG_MIN_LEN = NLMSGHDR.SIZE + INET_DIAG_MSG.SIZE;
const ERROR_MIN_LEN = NLMSGHDR.SIZE + 4;
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

/**
 * The reply to one inet_diag dump, taken datagram by datagram: it adds to a port set the local
 * port of every socket of the requested family and states. Built once and reused, begin()
 * before each dump; take() allocates nothing as long as it is given the same receive buffer.
 * A reply goes wrong only if the kernel misbehaves, and then it is rejected whole: status says
 * -EPROTO, and the ports added so far must be ignored.
 * @example
 * reply.begin(seq, AF_INET, 1 << TCP_LISTEN);
 * let n;
 * do n = recv(fd, rxBuf, rxBuf.length, MSG_DONTWAIT);
 * while (n >= 0 && reply.take(rxBuf, n, ports) === DiagStatus.MORE);
 */
export class InetDiagReply {
  /** Sockets whose port was added since begin() (each socket once, also on a port already set). */
  found = 0;
  /**
   * DiagStatus.MORE until the dump ends; then DiagStatus.DONE, or -errno: the kernel's (from
   * NLMSG_DONE or NLMSG_ERROR), or -EPROTO if the reply was malformed.
   */
  status: number = DiagStatus.DONE;
  private seq = 0;
  private family = 0;
  private states = 0;
  private dv: DataView<ArrayBufferLike> = EMPTY_VIEW;

  /** Starts taking the reply to request `seq`, which asked for `family` and the `states` mask. */
  begin(seq: number, family: number, states: number): void {
    this.seq = seq >>> 0;
    this.family = family;
    this.states = states >>> 0;
    this.found = 0;
    this.status = DiagStatus.MORE;
  }

  /**
   * Walks the datagram in `buf[0, len)`, adding to `out` the local port of each socket it
   * lists, and returns the new status. Messages of other requests (an earlier,
   * abandoned dump) are skipped; a header whose length is below its own size or runs past
   * `len`, a socket message too short for an inet_diag_msg, or an NLMSG_ERROR that is not an
   * error make the reply malformed. Once the dump has ended, further datagrams change nothing.
   * Never throws. O(len).
   */
  take(buf: Uint8Array, len: number, out: PortSet): number {
    if (this.status !== DiagStatus.MORE) return this.status;
    if (len < 0 || len > buf.byteLength) return this.fail(-Errno.EPROTO);
    const dv = this.viewOf(buf);
    let off = 0;
    while (off < len) {
      if (off + NLMSGHDR.SIZE > len) return this.fail(-Errno.EPROTO);
      const mlen = dv.getUint32(off + NLMSGHDR.LEN, true);
      if (mlen < NLMSGHDR.SIZE || mlen > len - off) return this.fail(-Errno.EPROTO);
      if (dv.getUint32(off + NLMSGHDR.SEQ, true) === this.seq) {
        const type = dv.getUint16(off + NLMSGHDR.TYPE, true);
        if (type === SOCK_DIAG_BY_FAMILY) {
          if (mlen < MSG_MIN_LEN) return this.fail(-Errno.EPROTO);
          const family = buf[off + NLMSGHDR.SIZE + INET_DIAG_MSG.FAMILY]!;
          const state = buf[off + NLMSGHDR.SIZE + INET_DIAG_MSG.STATE]!;
          const port = dv.getUint16(off + MSG_SPORT);
          if (family === this.family && state < 32 && ((this.states >>> state) & 1) === 1 && port !== 0) {
            out.add(port);
            this.found++;
          }
        } else if (type === NLMSG_DONE) {
          // The kernel always sends the dump's error; an older or other sender may not.
          const err = mlen >= ERROR_MIN_LEN ? dv.getInt32(off + NLMSGHDR.SIZE + NLMSGERR.ERROR, true) : 0;
          this.status = err < 0 ? err : DiagStatus.DONE;
          return this.status;
        } else if (type === NLMSG_ERROR) {
          // We ask for no acknowledgement: an error of 0 would end a dump that did not finish.
          const err = mlen >= ERROR_MIN_LEN ? dv.getInt32(off + NLMSGHDR.SIZE + NLMSGERR.ERROR, true) : 0;
          return this.fail(err < 0 ? err : -Errno.EPROTO);
        }
        // NLMSG_NOOP and types we do not know carry nothing for us. NLM_F_DUMP_INTR (the
        // table changed during the dump) is never set by inet_diag, and a scan repeats anyway.
      }
      off += nlAlign(mlen);
    }
    return this.status;
  }

  private fail(err: number): number {
    this.status = err;
    return err;
  }

  /** Returns a DataView over all of `buf`, made once per buffer. */
  private viewOf(buf: Uint8Array): DataView<ArrayBufferLike> {
    const dv = this.dv;
    if (dv.buffer === buf.buffer && dv.byteOffset === buf.byteOffset && dv.byteLength === buf.byteLength) return dv;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    return this.dv;
  }
}
