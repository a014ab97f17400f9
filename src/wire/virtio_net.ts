// SPDX-License-Identifier: GPL-2.0-or-later
// virtio_net.ts - the virtio-net header a tap opened with IFF_VNET_HDR puts in front of each frame
//
// struct virtio_net_hdr (virtio 1.x section 5.1.6, include/uapi/linux/virtio_net.h),
// 10 bytes, in the byte order of the host for a tap (little-endian on x86_64 and aarch64):
//
//   0        1        2                 4                 6                 8                 10
//  +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
//  | flags  |gso_type|     hdr_len     |    gso_size     |   csum_start    |   csum_offset   |
//  +--------+--------+--------+--------+--------+--------+--------+--------+--------+--------+
//
// flags NEEDS_CSUM: the L4 checksum is partial: the 16 bits at csum_start + csum_offset
// hold the pseudo-header sum, and the one's-complement sum from csum_start to the end of
// the frame completes it (Linux's CHECKSUM_PARTIAL). flags DATA_VALID: the sender already
// checked the checksum. gso_type other than NONE: the frame is one segment larger than
// the MTU, to be cut into segments of gso_size payload bytes after hdr_len header bytes
// (TCP), or carries several datagrams of gso_size payload bytes (UDP_L4).

import { checksum } from "./checksum.ts";

const FLAGS = 0;
const GSO_TYPE = 1;
const HDR_LEN = 2;
const GSO_SIZE = 4;
const CSUM_START = 6;
const CSUM_OFFSET = 8;

/** Bits of the flags byte. */
export const enum VirtioNetFlag {
  NEEDS_CSUM = 1,
  DATA_VALID = 2,
}

/** Values of gso_type. */
export const enum VirtioNetGso {
  NONE = 0,
  TCPV4 = 1,
  UDP = 3,
  TCPV6 = 4,
  /**
   * UDP segmentation (Linux 6.2+, TUN_F_USO4 | TUN_F_USO6): after hdr_len header bytes, the
   * payload is cut into datagrams of gso_size bytes, the last one possibly shorter, each with its
   * own UDP header (length and checksum) and IP header. Requires NEEDS_CSUM with csum_offset 6.
   */
  UDP_L4 = 5,
  /** Or'ed in: the segments carry ECN's CWR. */
  ECN = 0x80,
}

/** Fields of a virtio-net header. */
export interface VirtioNetFields {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/**
 * Zero-copy view of a virtio-net header. wrap() returns null on fewer than
 * VirtioNetHdrView.LEN bytes; once it succeeds no accessor reads out of bounds.
 * @example const h = new VirtioNetHdrView().wrap(buf); if (h?.needsCsum) completeChecksum(frame, h.csumStart, h.csumOffset);
 */
export class VirtioNetHdrView {
  /** Bytes of struct virtio_net_hdr (without num_buffers). */
  static readonly LEN = 10;
  private b: Uint8Array = new Uint8Array(VirtioNetHdrView.LEN);

  /** Points the view at `bytes`; returns null if they are too short for a header. */
  wrap(bytes: Uint8Array): this | null {
    if (bytes.byteLength < VirtioNetHdrView.LEN) return null;
    this.b = bytes;
    return this;
  }

  private u16(at: number): number {
    return this.b[at]! | (this.b[at + 1]! << 8);
  }

  get flags(): number {
    return this.b[FLAGS]!;
  }
  get gsoType(): number {
    return this.b[GSO_TYPE]!;
  }
  get hdrLen(): number {
    return this.u16(HDR_LEN);
  }
  get gsoSize(): number {
    return this.u16(GSO_SIZE);
  }
  get csumStart(): number {
    return this.u16(CSUM_START);
  }
  get csumOffset(): number {
    return this.u16(CSUM_OFFSET);
  }

  /** Writes `f` as a header at `buf[offset]` and returns VirtioNetHdrView.LEN. */
  static emit(buf: Uint8Array, offset: number, f: VirtioNetFields): number {
    if (offset < 0 || offset + VirtioNetHdrView.LEN > buf.byteLength) {
      throw new RangeError(`VirtioNetHdrView.emit: no room at offset ${offset} of ${buf.byteLength}`);
    }
    buf[offset + FLAGS] = f.flags;
    buf[offset + GSO_TYPE] = f.gsoType;
    buf[offset + HDR_LEN] = f.hdrLen & 0xff;
    buf[offset + HDR_LEN + 1] = f.hdrLen >>> 8;
    buf[offset + GSO_SIZE] = f.gsoSize & 0xff;
    buf[offset + GSO_SIZE + 1] = f.gsoSize >>> 8;
    buf[offset + CSUM_START] = f.csumStart & 0xff;
    buf[offset + CSUM_START + 1] = f.csumStart >>> 8;
    buf[offset + CSUM_OFFSET] = f.csumOffset & 0xff;
    buf[offset + CSUM_OFFSET + 1] = f.csumOffset >>> 8;
    return VirtioNetHdrView.LEN;
  }
}

/**
 * Completes a partial checksum (NEEDS_CSUM) in place: sums `frame` from `start` to
 * its end, the 16-bit field at `start + offset` holding the pseudo-header sum, and
 * stores the inverted result there. Returns false, changing nothing, if the field
 * does not lie inside the frame.
 */
export function completeChecksum(frame: Uint8Array, start: number, offset: number): boolean {
  const at = start + offset;
  if (at + 2 > frame.byteLength || offset < 0 || start < 0) return false;
  const c = checksum(frame.subarray(start));
  frame[at] = c >>> 8;
  frame[at + 1] = c & 0xff;
  return true;
}
