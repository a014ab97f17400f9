// SPDX-License-Identifier: GPL-2.0-or-later
// stream.ts - passt's qemu socket: Ethernet frames with a 4-byte big-endian length on a UNIX stream
//
// Theory of operation
//
// qemu (`-netdev stream`) and libvirt connect to our UNIX socket and exchange
// frames as  | length (u32, network order) | Ethernet frame (length bytes) |.
//
// Input: one large buffer in wasm memory. Each read() appends at `filled`;
// complete frames are handed to the guest path in place (the batch), then any
// partial frame left at the end is moved to the start once the batch is over,
// so frames stay valid until batchEnd(). A length below 14 (no Ethernet
// header) or above 65535 cannot be a frame: the stream is out of sync, so that
// client is dropped, with the reason logged, and the next one is served.
//
// Output: send() appends length and frame to a staging buffer; flush() writes
// the staged bytes with one write() per loop turn (a batch of frames per
// syscall). What the socket does not take stays staged, in order, and EPOLLOUT
// is armed; while staged bytes pile up past STAGE_LIMIT, new frames are dropped
// whole, so the stream never carries a partial frame. Frames are dropped, not
// queued without bound: the guest's TCP recovers as from any loss.

import type { Ctx } from "../ctx.ts";
import { close, read, write } from "../../syscalls/libc.ts";
import { Errno } from "../../syscalls/errno.ts";
import type { PcapWriter } from "../pcap.ts";
import { allocFrame, type TapSink } from "./frame.ts";
import { log } from "../log.ts";

/** Bytes of the length prefix. */
export const LENGTH_BYTES = 4;
/** Shortest frame: an Ethernet header. */
export const MIN_FRAME_BYTES = 14;
/** Longest frame the protocol allows. */
export const MAX_FRAME_BYTES = 65535;
/** Input buffer: many frames per read(). */
const IN_BYTES = 4 * 1024 * 1024;
/** Output staging buffer. */
const OUT_BYTES = 8 * 1024 * 1024;
/** Beyond this many staged bytes, new frames are dropped. */
const STAGE_LIMIT = OUT_BYTES - (MAX_FRAME_BYTES + LENGTH_BYTES);

/** Input and output buffers, shared by every StreamTap: one client is served at a time. */
let buffers: { in: Uint8Array; out: Uint8Array } | null = null;
function sharedBuffers(): { in: Uint8Array; out: Uint8Array } {
  buffers ??= { in: allocFrame(IN_BYTES), out: allocFrame(OUT_BYTES) };
  return buffers;
}

/** Why a client was dropped, or null while the stream is healthy. */
export type StreamError = string | null;

/** A qemu stream connection: framing in both directions over one socket fd. */
export class StreamTap implements TapSink {
  private readonly inBuf = sharedBuffers().in;
  private filled = 0;
  private readonly outBuf = sharedBuffers().out;
  private staged = 0;
  private readonly outDv = new DataView(this.outBuf.buffer, this.outBuf.byteOffset, this.outBuf.byteLength);
  private readonly inDv = new DataView(this.inBuf.buffer, this.inBuf.byteOffset, this.inBuf.byteLength);
  /** Connected client socket, or -1. */
  fd = -1;
  /** Frames dropped because the staging buffer was full. */
  sendDropped = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly pcap: PcapWriter | null,
  ) {}

  /** Starts serving `fd`, forgetting anything left from the previous client. */
  attach(fd: number): void {
    this.fd = fd;
    this.filled = 0;
    this.staged = 0;
  }

  /** Closes the client socket; returns its fd (for the caller to unregister first). */
  detach(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
    this.filled = 0;
    this.staged = 0;
  }

  /** Stages one frame with its length; returns false if it was dropped (no client, or backlog). */
  send(frame: Uint8Array): boolean {
    const len = frame.byteLength;
    if (this.fd < 0 || len > MAX_FRAME_BYTES || this.staged > STAGE_LIMIT) {
      this.sendDropped++;
      return false;
    }
    this.outDv.setUint32(this.staged, len);
    this.outBuf.set(frame, this.staged + LENGTH_BYTES);
    this.staged += LENGTH_BYTES + len;
    this.ctx.stats.framesOut++;
    this.pcap?.frame(frame);
    return true;
  }

  /** Returns true if staged bytes are waiting for the socket. */
  get pending(): boolean {
    return this.staged > 0;
  }

  /**
   * Writes staged frames; returns 0 when all went out, 1 if some remain (arm
   * EPOLLOUT), or -errno if the client is gone.
   * @syscalls write
   */
  flush(): number {
    if (this.staged === 0 || this.fd < 0) return 0;
    const n = write(this.fd, this.outBuf, this.staged);
    if (n === -Errno.EAGAIN) return 1;
    if (n < 0) return n;
    if (n < this.staged) {
      this.outBuf.copyWithin(0, n, this.staged);
      this.staged -= n;
      return 1;
    }
    this.staged = 0;
    return 0;
  }

  /**
   * Reads what the socket has and hands every complete frame to `input`, then calls
   * `batchEnd` once. Returns null while the stream is healthy, or why the client must
   * be dropped ("closed by peer", "bad frame length 3", a read error).
   * @syscalls read
   */
  readBatch(input: (frame: Uint8Array) => void, batchEnd: () => void): StreamError {
    let error: StreamError = null;
    let frames = 0;
    for (;;) {
      const room = IN_BYTES - this.filled;
      const n = read(this.fd, this.inBuf.subarray(this.filled), room);
      if (n === -Errno.EAGAIN || n === -Errno.EINTR) break;
      if (n < 0) {
        error = `read: errno ${-n}`;
        break;
      }
      if (n === 0) {
        error = "closed by peer";
        break;
      }
      this.filled += n;
      // Hand over complete frames; they stay in place until the batch ends.
      let off = this.consumed;
      while (this.filled - off >= LENGTH_BYTES) {
        const len = this.inDv.getUint32(off);
        if (len < MIN_FRAME_BYTES || len > MAX_FRAME_BYTES) {
          error = `bad frame length ${len}`;
          break;
        }
        if (this.filled - off - LENGTH_BYTES < len) break;
        const frame = this.inBuf.subarray(off + LENGTH_BYTES, off + LENGTH_BYTES + len);
        this.ctx.stats.framesIn++;
        this.pcap?.frame(frame);
        input(frame);
        frames++;
        off += LENGTH_BYTES + len;
      }
      this.consumed = off;
      if (error) break;
      // Keep reading only while the buffer may still take a whole frame.
      if (IN_BYTES - this.filled < MAX_FRAME_BYTES + LENGTH_BYTES) break;
    }
    if (frames) batchEnd();
    // Carry the partial frame over to the start for the next read.
    if (this.consumed > 0) {
      this.inBuf.copyWithin(0, this.consumed, this.filled);
      this.filled -= this.consumed;
      this.consumed = 0;
    }
    if (error) log.debug(`qemu socket: ${error}`);
    return error;
  }

  /** Bytes at the start of inBuf already handed to the guest path this batch. */
  private consumed = 0;
}
