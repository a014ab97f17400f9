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
// client is dropped, with the reason logged, and the next one is served. A
// client that goes away inside a frame is reported as such ("closed by peer
// inside a frame (50 of 342 bytes)"); the partial frame is discarded.
//
// Output: send() appends length and frame at `tail` of a staging buffer;
// flush() writes from `head` with one write() per loop turn (a batch of frames
// per syscall). What the socket does not take stays staged, in order, `head`
// moves past what it took, and EPOLLOUT is armed. The unsent bytes are moved
// back to the start only when a frame would not fit after `tail`, so a byte is
// moved about once at most (moving the rest after every short write copied
// megabytes per write of a few hundred kilobytes). While more than
// STAGE_LIMIT bytes wait, new frames are dropped whole, so the stream never
// carries a partial frame. Frames are dropped, not queued without bound: the
// guest's TCP recovers as from any loss.

import type { Ctx } from "../ctx.ts";
import { close, read, write } from "../../syscalls/libc.ts";
import { Errno, errnoName } from "../../syscalls/errno.ts";
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
const OUT_BYTES = 16 * 1024 * 1024;
/**
 * Beyond this many unsent bytes, new frames are dropped. Half the buffer, so that
 * moving the unsent bytes to the start always frees at least half of it.
 */
const STAGE_LIMIT = OUT_BYTES / 2;

/**
 * Input and output buffers, shared by every StreamTap: one client is served at a
 * time. Input is in wasm memory, where checksums of guest frames run in place;
 * output is only copied into and written, so it is ordinary memory.
 */
let buffers: { in: Uint8Array; out: Uint8Array } | null = null;
function sharedBuffers(): { in: Uint8Array; out: Uint8Array } {
  buffers ??= { in: allocFrame(IN_BYTES), out: new Uint8Array(OUT_BYTES) };
  return buffers;
}

/** Why a client was dropped, or null while the stream is healthy. */
export type StreamError = string | null;

/** A qemu stream connection: framing in both directions over one socket fd. */
export class StreamTap implements TapSink {
  private readonly inBuf = sharedBuffers().in;
  private filled = 0;
  private readonly outBuf = sharedBuffers().out;
  /** First staged byte not yet written to the socket. */
  private head = 0;
  /** End of the staged bytes. */
  private tail = 0;
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
    this.head = this.tail = 0;
  }

  /** Closes the client socket (unregister it from the loop first) and drops what was buffered. */
  detach(): void {
    if (this.fd >= 0) close(this.fd);
    this.fd = -1;
    this.filled = 0;
    this.head = this.tail = 0;
  }

  /** Stages one frame with its length; returns false if it was dropped (no client, or backlog). */
  send(frame: Uint8Array): boolean {
    const len = frame.byteLength;
    if (this.fd < 0 || len > MAX_FRAME_BYTES || this.tail - this.head > STAGE_LIMIT) {
      this.sendDropped++;
      return false;
    }
    if (this.tail + LENGTH_BYTES + len > OUT_BYTES) {
      this.outBuf.copyWithin(0, this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    this.outDv.setUint32(this.tail, len);
    this.outBuf.set(frame, this.tail + LENGTH_BYTES);
    this.tail += LENGTH_BYTES + len;
    this.ctx.stats.framesOut++;
    this.pcap?.frame(frame);
    return true;
  }

  /** Returns true if staged bytes are waiting for the socket. */
  get pending(): boolean {
    return this.tail > this.head;
  }

  /**
   * Writes staged frames; returns 0 when all went out, 1 if some remain (arm
   * EPOLLOUT), or -errno if the client is gone.
   * @syscalls write
   */
  flush(): number {
    const bytes = this.tail - this.head;
    if (bytes === 0 || this.fd < 0) return 0;
    const n = write(this.fd, this.head === 0 ? this.outBuf : this.outBuf.subarray(this.head), bytes);
    if (n === -Errno.EAGAIN) return 1;
    if (n < 0) return n;
    if (n < bytes) {
      this.head += n;
      return 1;
    }
    this.head = this.tail = 0;
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
        error = `read: ${errnoName(n)}`;
        break;
      }
      if (n === 0) {
        error = this.closedReason();
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

  /** Returns why the stream ended at EOF: cleanly, or inside a frame (truncated). */
  private closedReason(): string {
    const partial = this.filled - this.consumed;
    if (partial === 0) return "closed by peer";
    if (partial < LENGTH_BYTES) return `closed by peer inside a length prefix (${partial} of ${LENGTH_BYTES} bytes)`;
    const len = this.inDv.getUint32(this.consumed);
    return `closed by peer inside a frame (${partial - LENGTH_BYTES} of ${len} bytes)`;
  }
}
