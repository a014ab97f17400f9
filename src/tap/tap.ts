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

import type { Ctx } from "../ctx.ts";
import { read, write } from "../../syscalls/libc.ts";
import { Errno } from "../../syscalls/errno.ts";
import type { PcapWriter } from "../pcap.ts";
import { allocFrame, MAX_FRAME_BYTES, type TapSink } from "./frame.ts";

/** Frames read per wakeup before yielding to other events. */
export const READ_BATCH = 64;

/** The guest side of pasta: a tap device in the namespace. */
export class TapDevice implements TapSink {
  private readonly pool: Uint8Array[] = [];
  /** Frames the kernel would not take (queue full); counted, not retried. */
  sendDropped = 0;

  constructor(
    private readonly ctx: Ctx,
    readonly fd: number,
    private readonly pcap: PcapWriter | null,
  ) {
    for (let i = 0; i < READ_BATCH; i++) this.pool.push(allocFrame(MAX_FRAME_BYTES));
  }

  /** Writes one frame to the tap; returns false if the kernel dropped or refused it. @syscalls write */
  send(frame: Uint8Array): boolean {
    const n = write(this.fd, frame, frame.byteLength);
    if (n !== frame.byteLength) {
      this.sendDropped++;
      if (n < 0 && n !== -Errno.EAGAIN) this.ctx.stats.drop(`tapWrite${-n}`);
      return false;
    }
    this.ctx.stats.framesOut++;
    this.pcap?.frame(frame);
    return true;
  }

  /**
   * Reads and dispatches up to READ_BATCH frames; returns -errno if the tap failed
   * (EIO once the namespace is gone), else the number of frames read.
   * @syscalls read
   */
  readBatch(input: (frame: Uint8Array) => void, batchEnd: () => void): number {
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
      const frame = buf.subarray(0, n);
      this.ctx.stats.framesIn++;
      this.pcap?.frame(frame);
      input(frame);
    }
    if (count) batchEnd();
    return count;
  }
}
