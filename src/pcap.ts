// SPDX-License-Identifier: GPL-2.0-or-later
// pcap.ts - --pcap: every frame to and from the guest, in classic pcap format
//
// One record per frame, written synchronously (the loop blocks Bun's own event
// loop, so nothing may sit in an async buffer). Debugging aid, as upstream's:
// it costs two write() calls per frame, so it is off unless asked for.

import { closeSync, openSync, writeSync } from "node:fs";

const PCAP_MAGIC = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
/** Snapshot length we declare: whole frames, as large as we build them. */
const SNAPLEN = 65535 + 14;

/** A pcap file being written; frames go in as they cross the tap. */
export class PcapWriter {
  private readonly fd: number;
  private readonly header = new Uint8Array(16);
  private readonly dv = new DataView(this.header.buffer);

  /** Creates (truncating) `path` and writes the global header. Throws on I/O errors: start-up only. */
  constructor(path: string) {
    this.fd = openSync(path, "w", 0o600);
    const global = new DataView(new ArrayBuffer(24));
    global.setUint32(0, PCAP_MAGIC, true);
    global.setUint16(4, 2, true);
    global.setUint16(6, 4, true);
    global.setUint32(16, SNAPLEN, true);
    global.setUint32(20, LINKTYPE_ETHERNET, true);
    writeSync(this.fd, new Uint8Array(global.buffer));
  }

  /** Appends one frame with the current time; I/O errors are ignored (the capture is best effort). */
  frame(bytes: Uint8Array): void {
    const nowMs = Date.now();
    this.dv.setUint32(0, Math.floor(nowMs / 1000), true);
    this.dv.setUint32(4, (nowMs % 1000) * 1000, true);
    this.dv.setUint32(8, bytes.byteLength, true);
    this.dv.setUint32(12, bytes.byteLength, true);
    try {
      writeSync(this.fd, this.header);
      writeSync(this.fd, bytes);
    } catch {
      // A full disk must not stop the data path.
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
