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
// Frames with a partial checksum are not checked (tapFrameMeta.l4ChecksumOk):
// the namespace's kernel made them. With --pcap, their checksums are completed
// before capture, so the file reads as if no offload had taken place (but
// with frames larger than the MTU, as tcpdump shows on an offloading NIC).

import type { Ctx } from "../ctx.ts";
import { arena, ioctlInt, read, write, writev2, TUNSETOFFLOAD, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 } from "../../syscalls/mod.ts";
import { Errno } from "../../syscalls/errno.ts";
import type { PcapWriter } from "../pcap.ts";
import { EtherType } from "../wire/ethernet.ts";
import { completeChecksum, VirtioNetFlag, VirtioNetGso, VirtioNetHdrView, type VirtioNetFields } from "../wire/virtio_net.ts";
import { allocFrame, L4_OFFSET4, L4_OFFSET6, MAX_FRAME_BYTES, type TapSink } from "./frame.ts";
import { tapFrameMeta } from "./input.ts";

/** Frames read per wakeup before yielding to other events. */
export const READ_BATCH = 64;
/** Offset of the TCP checksum in the TCP header. */
const TCP_CSUM_OFFSET = 16;
/** TCP header length of the frames tcp.ts hands us with a gsoSize (no options). */
const TCP_HLEN = 20;

/** Options of a TapDevice. */
export interface TapDeviceOptions {
  /** The fd was opened with IFF_VNET_HDR: frames carry a virtio-net header; ask for offloads. */
  vnetHdr?: boolean;
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
  private readonly hdrOut = arena(VirtioNetHdrView.LEN, 16);
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
    this.tso = this.vnetHdr && ioctlInt(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) === 0;
    const head = this.vnetHdr ? VirtioNetHdrView.LEN : 0;
    for (let i = 0; i < READ_BATCH; i++) this.pool.push(allocFrame(MAX_FRAME_BYTES + head));
  }

  /**
   * Writes one frame to the tap; returns false if the kernel dropped or refused it.
   * `gsoSize`: see TapSink.send(); only meaningful when `tso` is true.
   * @syscalls write writev
   */
  send(frame: Uint8Array, gsoSize = 0): boolean {
    const len = frame.byteLength;
    let n: number;
    if (this.vnetHdr) {
      const f = this.fields;
      if (gsoSize > 0 && this.tso) {
        const v6 = frame[12] === EtherType.IPV6 >>> 8 && frame[13] === (EtherType.IPV6 & 0xff);
        const l4 = v6 ? L4_OFFSET6 : L4_OFFSET4;
        f.flags = VirtioNetFlag.NEEDS_CSUM;
        f.gsoType = len - l4 - TCP_HLEN > gsoSize ? (v6 ? VirtioNetGso.TCPV6 : VirtioNetGso.TCPV4) : VirtioNetGso.NONE;
        f.hdrLen = l4 + TCP_HLEN;
        f.gsoSize = f.gsoType === VirtioNetGso.NONE ? 0 : gsoSize;
        f.csumStart = l4;
        f.csumOffset = TCP_CSUM_OFFSET;
      } else {
        f.flags = f.gsoType = f.hdrLen = f.gsoSize = f.csumStart = f.csumOffset = 0;
      }
      VirtioNetHdrView.emit(this.hdrOut, 0, f);
      n = writev2(this.fd, this.hdrOut, VirtioNetHdrView.LEN, frame, len);
      if (n >= VirtioNetHdrView.LEN) n -= VirtioNetHdrView.LEN;
    } else {
      n = write(this.fd, frame, len);
    }
    if (n !== len) {
      this.sendDropped++;
      if (n < 0 && n !== -Errno.EAGAIN) this.ctx.stats.drop(`tapWrite${-n}`);
      return false;
    }
    this.ctx.stats.framesOut++;
    if (this.pcap !== null) {
      if (this.fields.flags & VirtioNetFlag.NEEDS_CSUM) completeChecksum(frame, this.fields.csumStart, this.fields.csumOffset);
      this.pcap.frame(frame);
    }
    return true;
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
      let trusted = false;
      if (head) {
        const h = this.hdrIn.wrap(buf)!;
        const flags = h.flags;
        trusted = (flags & (VirtioNetFlag.NEEDS_CSUM | VirtioNetFlag.DATA_VALID)) !== 0;
        if (flags & VirtioNetFlag.NEEDS_CSUM && this.pcap !== null) completeChecksum(frame, h.csumStart, h.csumOffset);
      }
      this.ctx.stats.framesIn++;
      this.pcap?.frame(frame);
      tapFrameMeta.l4ChecksumOk = trusted;
      input(frame);
    }
    tapFrameMeta.l4ChecksumOk = false;
    if (count) batchEnd();
    return count;
  }
}
