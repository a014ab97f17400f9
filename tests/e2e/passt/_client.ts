// SPDX-License-Identifier: GPL-2.0-or-later
// _client.ts - a minimal qemu stand-in for passt's UNIX socket, and the passt binaries under test
//
// QemuClient speaks qemu's `-netdev stream` framing (a 4-byte big-endian length, then the
// Ethernet frame) over a UNIX stream socket, so a test can send good or broken streams and read
// what passt sends back. dhcpDiscover() and isDhcpOffer() make and recognise the one exchange
// the tests use to ask "is this client being served?"; tcpFrame() and tcpSegment() let a test
// play a guest's TCP by hand.

import { existsSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join, resolve } from "node:path";
import { EthernetView, EtherType } from "../../../src/wire/ethernet.ts";
import { IpProtocol, Ipv4View } from "../../../src/wire/ipv4.ts";
import { TcpView, type TcpFields } from "../../../src/wire/tcp.ts";

const REPO_ROOT = resolve(import.meta.dir, "../../..");
const DEBIAN_PASST = "/usr/bin/passt";

/** One passt binary under test. */
export interface PasstBinary {
  /** Short label for describe.each: "dist" or "debian". */
  name: string;
  path: string;
  /** True for the 2023 upstream snapshot Debian ships. */
  upstream2023: boolean;
}

/**
 * Returns the binaries to test: only PASST_BIN when it is set, otherwise our dist/passt and,
 * when installed, Debian's /usr/bin/passt (the same test runs against both).
 */
export function passtBinaries(): PasstBinary[] {
  const describe = (path: string): PasstBinary => {
    const upstream2023 = resolve(path) === DEBIAN_PASST || process.env.PASST_UPSTREAM_2023 === "1";
    return { name: upstream2023 ? "debian" : "dist", path, upstream2023 };
  };
  if (process.env.PASST_BIN) return [describe(process.env.PASST_BIN)];
  const list = [describe(join(REPO_ROOT, "dist/passt"))];
  if (existsSync(DEBIAN_PASST)) list.push(describe(DEBIAN_PASST));
  return list;
}

/** Bytes of the stream's length prefix. */
const LENGTH_BYTES = 4;

/** A client on passt's socket, framing as qemu does. */
export class QemuClient {
  private pending = new Uint8Array(0);
  private readonly frames: Uint8Array[] = [];
  private waiter: (() => void) | null = null;
  /** True once passt (or we) closed the connection. */
  ended = false;

  private constructor(private readonly sock: Socket) {
    sock.on("data", (chunk: Buffer) => {
      const all = new Uint8Array(this.pending.length + chunk.length);
      all.set(this.pending);
      all.set(chunk, this.pending.length);
      let off = 0;
      while (all.length - off >= LENGTH_BYTES) {
        const len = new DataView(all.buffer, off).getUint32(0);
        if (all.length - off - LENGTH_BYTES < len) break;
        this.frames.push(all.slice(off + LENGTH_BYTES, off + LENGTH_BYTES + len));
        off += LENGTH_BYTES + len;
      }
      this.pending = all.slice(off);
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    sock.on("end", end);
    sock.on("close", end);
    sock.on("error", end);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** Resolves with a client connected to `path`; rejects with the socket error (ENOENT, ECONNREFUSED). */
  static connect(path: string): Promise<QemuClient> {
    return new Promise((ok, fail) => {
      const sock = connect({ path });
      sock.once("connect", () => ok(new QemuClient(sock)));
      sock.once("error", fail);
    });
  }

  /** Writes bytes as they are: for broken streams. */
  sendRaw(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  /** Writes one frame with its length prefix. */
  sendFrame(frame: Uint8Array): void {
    const out = new Uint8Array(LENGTH_BYTES + frame.length);
    new DataView(out.buffer).setUint32(0, frame.length);
    out.set(frame, LENGTH_BYTES);
    this.sock.write(out);
  }

  /**
   * Resolves with the first frame (received so far or later) that `match` accepts, or null
   * after `timeoutMs` or once the connection ended.
   */
  async waitFrame(match: (frame: Uint8Array) => boolean, timeoutMs = 5000): Promise<Uint8Array | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.ended || Date.now() >= deadline) return null;
      await new Promise<void>((wake) => {
        this.waiter = wake;
        setTimeout(wake, Math.max(1, deadline - Date.now()));
      });
    }
  }

  /** Removes and returns, in order, every frame received so far that `match` accepts. */
  drainFrames(match: (frame: Uint8Array) => boolean): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < this.frames.length; ) {
      if (match(this.frames[i]!)) out.push(this.frames.splice(i, 1)[0]!);
      else i++;
    }
    return out;
  }

  /** Resolves true once passt has closed the connection, false after `timeoutMs`. */
  async waitEnd(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      await new Promise<void>((wake) => {
        this.waiter = wake;
        setTimeout(wake, Math.max(1, deadline - Date.now()));
      });
    }
    return this.ended;
  }

  /** Closes our side. */
  close(): void {
    this.sock.destroy();
    this.ended = true;
  }
}

const DHCP_DISCOVER = readFileSync(join(import.meta.dir, "../../fixtures/dhcp_discover.bin"));
/** Offsets in the fixture: Ethernet source MAC, BOOTP xid, BOOTP chaddr. */
const ETH_SRC = 6, XID = 14 + 20 + 8 + 4, CHADDR = 14 + 20 + 8 + 28;

/**
 * Returns busybox udhcpc's DHCPDISCOVER (tests/fixtures/dhcp_discover.bin) with transaction id
 * `xid` and client MAC 02:00:00:00:00:`id`, so each client's offer can be told apart.
 */
export function dhcpDiscover(xid: number, id: number): Uint8Array {
  const frame = new Uint8Array(DHCP_DISCOVER);
  const mac = [0x02, 0, 0, 0, 0, id & 0xff];
  frame.set(mac, ETH_SRC);
  frame.set(mac, CHADDR);
  new DataView(frame.buffer).setUint32(XID, xid);
  return frame;
}

/**
 * Returns the address a DHCPOFFER for transaction `xid` offers ("a.b.c.d"), or null if `frame`
 * is not one (IPv4 without options, UDP to port 68, BOOTREPLY, option 53 = 2).
 */
export function dhcpOffer(frame: Uint8Array, xid: number): string | null {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const ip = 14, udp = ip + 20, bootp = udp + 8, options = bootp + 240;
  if (frame.length < options || dv.getUint16(12) !== 0x0800 || frame[ip] !== 0x45 || frame[ip + 9] !== 17) return null;
  if (dv.getUint16(udp + 2) !== 68 || frame[bootp] !== 2 || dv.getUint32(bootp + 4) !== xid) return null;
  for (let off = options; off + 1 < frame.length && frame[off] !== 0xff; ) {
    if (frame[off] === 0) {
      off++;
      continue;
    }
    if (frame[off] === 53 && frame[off + 2] === 2) return frame.subarray(bootp + 16, bootp + 20).join(".");
    off += 2 + frame[off + 1]!;
  }
  return null;
}

/** Returns an Ethernet frame holding one IPv4 TCP segment (checksums filled) from `src` to `dst`. */
export function tcpFrame(
  macs: { src: Uint8Array; dst: Uint8Array }, src: Uint8Array, dst: Uint8Array, fields: TcpFields, payload?: Uint8Array,
): Uint8Array {
  const l3 = EthernetView.HEADER_LEN, l4 = l3 + Ipv4View.MIN_HEADER_LEN;
  const hlen = TcpView.headerLengthFor(fields);
  const plen = payload?.byteLength ?? 0;
  const frame = new Uint8Array(l4 + hlen + plen);
  if (payload) frame.set(payload, l4 + hlen);
  TcpView.emit(frame, l4, { ...fields, payloadLength: plen, src, dst });
  Ipv4View.emit(frame, l3, { src, dst, protocol: IpProtocol.TCP, payloadLength: hlen + plen });
  EthernetView.emit(frame, 0, { dst: macs.dst, src: macs.src, etherType: EtherType.IPV4 });
  return frame;
}

/** Returns the TCP segment of an IPv4 frame from port `srcPort` to port `dstPort`, else null. */
export function tcpSegment(frame: Uint8Array, srcPort: number, dstPort: number): TcpView | null {
  if (frame.byteLength < 34 || ((frame[12]! << 8) | frame[13]!) !== EtherType.IPV4) return null;
  const ip = Ipv4View.parse(frame.subarray(EthernetView.HEADER_LEN));
  if (ip === null || ip.protocol !== IpProtocol.TCP) return null;
  const end = EthernetView.HEADER_LEN + ip.totalLength;
  const tcp = TcpView.parse(frame.subarray(EthernetView.HEADER_LEN + ip.headerLength, end));
  return tcp !== null && tcp.srcPort === srcPort && tcp.dstPort === dstPort ? tcp : null;
}

/** Returns a dotted IPv4 address as 4 bytes. */
export function ipv4Bytes(text: string): Uint8Array {
  return Uint8Array.from(text.split(".").map(Number));
}
