// SPDX-License-Identifier: GPL-2.0-or-later
// tap.ts - pasta's tap device: frames read in batches from the loop, frames written one per call
//
// Theory of operation
//
// The tap fd (IFF_TAP | IFF_NO_PI, non-blocking) carries one Ethernet frame per
// read() or write(), with no prefix. On EPOLLIN we read up to READ_BATCH frames,
// each into its own buffer of a pool in wasm memory (so checksums run in place and
// a handler may keep looking at a frame until the end of the batch), hand each
// to tapInput(), then call the batch-end hook once, which lets the L4 handlers
// flush what they gathered. Frames to the guest are written straight away; a
// full tap queue (EAGAIN) drops the frame, which is counted: the guest's TCP
// recovers from that as from any loss, and we never buffer on its behalf.
//
// Offloads (no upstream path has them): opened with IFF_VNET_HDR, every frame in
// both directions carries a 10-byte virtio-net header (wire/virtio_net.ts), and
// TUNSETOFFLOAD(CSUM | TSO4 | TSO6) tells the namespace's kernel that we take
// frames with partial checksums and TCP frames up to 64 KiB whatever the MTU.
// Its TCP then hands us one frame per 64 KiB instead of one per MSS, and we
// write one send() per such frame to the host socket. The other way, tcp.ts
// builds frames of up to 64 KiB and send(frame, mss) marks them for
// segmentation (gso_type, gso_size) with a partial checksum, which the
// namespace's kernel takes as one already-checked segment (it never cuts it
// up unless it routes it on). At MTU 1500 that is 44 times fewer frames, and
// as many fewer system calls, each way. A kernel that refuses TUNSETOFFLOAD
// leaves us with the header and no offloads (tso false): frames fit the MTU.
//
// UDP segmentation offload (USO, Linux 6.2+): TUNSETOFFLOAD also offers USO4 |
// USO6 when the kernel takes them (uso true; else we retry without). udp.ts then
// hands send() one frame for a run of datagrams of one flow of the same length
// (the last may be shorter): headers once, the payloads gathered from where
// recvmmsg() put them (`tail`), gso_type UDP_L4. The namespace's kernel passes
// it up its stack as one packet and cuts it into datagrams, each with its own
// UDP length and checksum, when it queues them on the receiving socket: one
// write() and one trip through IP for up to 64 KiB of datagrams. Offering USO
// also lets the namespace send us such frames (an application using
// UDP_SEGMENT, or forwarded UDP GRO packets): readBatch() reports gso_size in
// tapFrameMeta.udpGsoSize, and udp.ts sends the datagrams one by one (or with
// UDP_SEGMENT again), never as one.
//
// Frames with a partial checksum are not checked (tapFrameMeta.l4ChecksumOk):
// the namespace's kernel made them. With --pcap, their checksums are completed
// before capture, so the file reads as if no offload had taken place (but
// with frames larger than the MTU, as tcpdump shows on an offloading NIC).

import type { Ctx } from "../ctx.ts";
import {
  arena, ioctlInt, read, write, writev, writev2, IovecList, TUNSETOFFLOAD, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4,
  TUN_F_USO6,
} from "../../syscalls/mod.ts";
import { Errno } from "../../syscalls/errno.ts";
import type { PcapWriter } from "../pcap.ts";
import { EtherType } from "../wire/ethernet.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import { completeChecksum, VirtioNetFlag, VirtioNetGso, VirtioNetHdrView, type VirtioNetFields } from "../wire/virtio_net.ts";
import { allocFrame, L3_OFFSET, L4_OFFSET4, L4_OFFSET6, MAX_FRAME_BYTES, type TapSink } from "./frame.ts";
import { tapFrameMeta } from "./input.ts";

/** Frames read per wakeup before yielding to other events. */
export const READ_BATCH = 64;
/** Offset of the TCP checksum in the TCP header. */
const TCP_CSUM_OFFSET = 16;
/** TCP header length of the frames tcp.ts hands us with a gsoSize (no options). */
const TCP_HLEN = 20;
/** Offset of the UDP checksum in the UDP header. */
const UDP_CSUM_OFFSET = 6;
/** UDP header length. */
const UDP_HLEN = 8;
/** Most iovecs a gathered frame takes: the virtio-net header, the frame, a tail of up to 64. */
const GATHER_IOVECS = 2 + 64;
/** Offset of the protocol field of an IPv4 header and of the next header field of an IPv6 header. */
const IP4_PROTOCOL = 9, IP6_NEXT_HEADER = 6;

/** Options of a TapDevice. */
export interface TapDeviceOptions {
  /** The fd was opened with IFF_VNET_HDR: frames carry a virtio-net header; ask for offloads. */
  vnetHdr?: boolean;
  /**
   * With vnetHdr: take these offloads as granted instead of asking with TUNSETOFFLOAD
   * (tests, where a socket pair stands in for the tap).
   */
  offloads?: { tso: boolean; uso: boolean };
}

/** The guest side of pasta: a tap device in the namespace. */
export class TapDevice implements TapSink {
  private readonly pool: Uint8Array[] = [];
  /** Frames the kernel would not take (queue full); counted, not retried. */
  sendDropped = 0;
  /** Frames carry a virtio-net header. */
  readonly vnetHdr: boolean;
  /** The namespace's kernel takes TCP frames larger than the MTU from us, and sends us such frames. */
  readonly tso: boolean;
  /** It also takes and sends UDP frames carrying several datagrams (gso_type UDP_L4). */
  readonly uso: boolean;
  private readonly hdrOut = arena(VirtioNetHdrView.LEN, 16);
  /** iovecs of a gathered frame: header, frame, tail. */
  private readonly gather = new IovecList(GATHER_IOVECS);
  /** For --pcap: a gathered frame copied in one piece (allocated on first use). */
  private pcapCopy: Uint8Array | null = null;
  private readonly hdrIn = new VirtioNetHdrView();
  private readonly fields: VirtioNetFields = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };

  /** @syscalls ioctl */
  constructor(
    private readonly ctx: Ctx,
    readonly fd: number,
    private readonly pcap: PcapWriter | null,
    opts: TapDeviceOptions = {},
  ) {
    this.vnetHdr = opts.vnetHdr === true;
    const tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (!this.vnetHdr) {
      this.tso = this.uso = false;
    } else if (opts.offloads !== undefined) {
      this.uso = opts.offloads.uso;
      this.tso = opts.offloads.tso || this.uso;
    } else {
      // Kernels before 6.2 refuse the USO bits (EINVAL): then without them.
      this.uso = ioctlInt(fd, TUNSETOFFLOAD, tso | TUN_F_USO4 | TUN_F_USO6) === 0;
      this.tso = this.uso || ioctlInt(fd, TUNSETOFFLOAD, tso) === 0;
    }
    const head = this.vnetHdr ? VirtioNetHdrView.LEN : 0;
    for (let i = 0; i < READ_BATCH; i++) this.pool.push(allocFrame(MAX_FRAME_BYTES + head));
  }

  /**
   * Writes one frame to the tap, `frame` followed by the bytes of `tail` if
   * given; returns false if the kernel dropped or refused it. `gsoSize` and
   * `tail`: see TapSink.send(); only meaningful when `tso` (TCP) or `uso`
   * (UDP) is true.
   * @syscalls write writev
   */
  send(frame: Uint8Array, gsoSize = 0, tail: IovecList | null = null): boolean {
    const len = frame.byteLength + (tail === null ? 0 : tail.bytes);
    const f = this.fields;
    let n: number;
    if (this.vnetHdr) {
      if (gsoSize > 0 && this.tso) {
        const v6 = frame[12] === EtherType.IPV6 >>> 8 && frame[13] === (EtherType.IPV6 & 0xff);
        const l4 = v6 ? L4_OFFSET6 : L4_OFFSET4;
        const udp = frame[L3_OFFSET + (v6 ? IP6_NEXT_HEADER : IP4_PROTOCOL)] === IpProtocol.UDP;
        const hlen = udp ? UDP_HLEN : TCP_HLEN;
        const more = len - l4 - hlen > gsoSize;
        f.flags = VirtioNetFlag.NEEDS_CSUM;
        if (!more) f.gsoType = VirtioNetGso.NONE;
        else if (udp) f.gsoType = this.uso ? VirtioNetGso.UDP_L4 : VirtioNetGso.NONE;
        else f.gsoType = v6 ? VirtioNetGso.TCPV6 : VirtioNetGso.TCPV4;
        f.hdrLen = l4 + hlen;
        f.gsoSize = f.gsoType === VirtioNetGso.NONE ? 0 : gsoSize;
        f.csumStart = l4;
        f.csumOffset = udp ? UDP_CSUM_OFFSET : TCP_CSUM_OFFSET;
        // Without USO the frame would reach the guest as one datagram: refuse it.
        if (more && f.gsoType === VirtioNetGso.NONE) return this.refused("tapNoUso");
      } else {
        f.flags = f.gsoType = f.hdrLen = f.gsoSize = f.csumStart = f.csumOffset = 0;
      }
      VirtioNetHdrView.emit(this.hdrOut, 0, f);
      if (tail === null) {
        n = writev2(this.fd, this.hdrOut, VirtioNetHdrView.LEN, frame, len);
      } else {
        const g = this.gather;
        g.clear();
        g.push(this.hdrOut, 0, VirtioNetHdrView.LEN);
        g.push(frame, 0, frame.byteLength);
        if (!g.append(tail)) return this.refused("tapGatherTooLong");
        n = writev(this.fd, g.iov, g.count);
      }
      if (n >= VirtioNetHdrView.LEN) n -= VirtioNetHdrView.LEN;
    } else {
      if (tail !== null) return this.refused("tapGatherNoVnet");
      n = write(this.fd, frame, len);
    }
    if (n !== len) {
      this.sendDropped++;
      if (n < 0 && n !== -Errno.EAGAIN) this.ctx.stats.drop(`tapWrite${-n}`);
      return false;
    }
    this.ctx.stats.framesOut++;
    if (this.pcap !== null) this.capture(frame, tail, len);
    return true;
  }

  /** Counts a frame send() refuses to write, as a drop under `reason`; returns false. */
  private refused(reason: string): boolean {
    this.sendDropped++;
    this.ctx.stats.drop(reason);
    return false;
  }

  /** Writes a frame just sent to the capture, its partial checksum completed. */
  private capture(frame: Uint8Array, tail: IovecList | null, len: number): void {
    let whole = frame;
    if (tail !== null) {
      this.pcapCopy ??= new Uint8Array(MAX_FRAME_BYTES);
      whole = this.pcapCopy.subarray(0, len);
      whole.set(frame);
      tail.copyTo(whole, frame.byteLength);
    }
    if (this.fields.flags & VirtioNetFlag.NEEDS_CSUM) completeChecksum(whole, this.fields.csumStart, this.fields.csumOffset);
    this.pcap!.frame(whole);
  }

  /**
   * Reads and dispatches up to READ_BATCH frames; returns -errno if the tap failed
   * (EIO once the namespace is gone), else the number of frames read.
   * @syscalls read
   */
  readBatch(input: (frame: Uint8Array) => void, batchEnd: () => void): number {
    const head = this.vnetHdr ? VirtioNetHdrView.LEN : 0;
    let count = 0;
    for (; count < READ_BATCH; count++) {
      const buf = this.pool[count]!;
      const n = read(this.fd, buf, buf.byteLength);
      if (n === -Errno.EAGAIN || n === -Errno.EINTR) break;
      if (n < 0) {
        if (count) batchEnd();
        return n;
      }
      if (n === 0) break;
      if (n <= head) {
        this.ctx.stats.drop("tapShortRead");
        continue;
      }
      const frame = buf.subarray(head, n);
      let trusted = false, udpGsoSize = 0;
      if (head) {
        const h = this.hdrIn.wrap(buf)!;
        const flags = h.flags;
        trusted = (flags & (VirtioNetFlag.NEEDS_CSUM | VirtioNetFlag.DATA_VALID)) !== 0;
        if ((h.gsoType & ~VirtioNetGso.ECN) === VirtioNetGso.UDP_L4) udpGsoSize = h.gsoSize;
        if (flags & VirtioNetFlag.NEEDS_CSUM && this.pcap !== null) completeChecksum(frame, h.csumStart, h.csumOffset);
      }
      this.ctx.stats.framesIn++;
      this.pcap?.frame(frame);
      tapFrameMeta.l4ChecksumOk = trusted;
      tapFrameMeta.udpGsoSize = udpGsoSize;
      input(frame);
    }
    tapFrameMeta.l4ChecksumOk = false;
    tapFrameMeta.udpGsoSize = 0;
    if (count) batchEnd();
    return count;
  }
}
