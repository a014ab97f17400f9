// SPDX-License-Identifier: GPL-2.0-or-later
// pcap.ts - read classic pcap files in tests (fixtures, captures of our own runs)

/** One captured frame: its index in the file (0-based) and its bytes. */
export interface PcapFrame {
  index: number;
  bytes: Uint8Array;
}

const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;

/**
 * Returns every frame of a classic pcap file (either byte order, micro- or
 * nanosecond timestamps). Throws on a file that is not pcap: tests want to know.
 */
export function readPcap(data: Uint8Array): PcapFrame[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = dv.getUint32(0, true);
  let little: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else throw new Error(`not a pcap file: magic 0x${magic.toString(16)}`);
  const frames: PcapFrame[] = [];
  let off = GLOBAL_HEADER_LEN;
  while (off + RECORD_HEADER_LEN <= data.byteLength) {
    const capLen = dv.getUint32(off + 8, little);
    off += RECORD_HEADER_LEN;
    if (off + capLen > data.byteLength) throw new Error(`truncated pcap record at ${off}`);
    frames.push({ index: frames.length, bytes: data.slice(off, off + capLen) });
    off += capLen;
  }
  return frames;
}

/** Returns the frames of a pcap file on disk. */
export async function readPcapFile(path: string): Promise<PcapFrame[]> {
  return readPcap(new Uint8Array(await Bun.file(path).arrayBuffer()));
}

/** Path of the shared capture of Debian's (2023) pasta serving real clients. */
export const UPSTREAM_SESSION_PCAP = new URL("../../../shared/fixtures/upstream-2023-session.pcap", import.meta.url).pathname;
