// SPDX-License-Identifier: GPL-2.0-or-later
// dnsname.ts - DNS names and name lists in wire form (RFC 1035 3.1, 4.1.4) for DHCP 119, DHCPv6 24, DNSSL
//
// A name on the wire is a sequence of labels, each a length byte (1-63) and
// that many bytes, ended by a zero byte (the root label). RFC 1035 4.1.4 adds
// compression pointers: two bytes 0b11pppppp pppppppp naming an earlier offset
// where the rest of the name is found. Of our users, only DHCP option 119
// (RFC 3397 section 2) allows pointers, whose offsets count from the start of
// the search list; DHCPv6 option 24 (RFC 8415 section 10) and the NDP DNSSL
// option (RFC 8106 section 5.2) forbid them.
//
// Decoding reads untrusted bytes: it returns null on anything malformed and
// never throws. A pointer must point strictly before itself, so every pointer
// followed moves backwards and a chain ends after at most `list.length` steps.
// Names come back in text form, labels joined by ".", without a trailing dot;
// the root name is "". Encoding is for configuration values: it allocates, so
// callers encode once and copy the bytes per packet.

/** Longest label, in bytes (RFC 1035 2.3.4). */
export const MAX_LABEL_LEN = 63;
/** Longest name in wire form, length bytes and root label included (RFC 1035 2.3.4). */
export const MAX_NAME_WIRE_LEN = 255;

const POINTER_MASK = 0xc0;
const DOT = 0x2e;

/** Options for decodeName() and decodeNameList(). */
export interface DnsNameDecodeOptions {
  /** Follow RFC 1035 compression pointers (DHCP option 119 only). Default false. */
  compression?: boolean;
  /** Treat a zero byte where a name would start as padding: the rest must be zeros (DNSSL). Default false. */
  padding?: boolean;
}

/** A name decoded by decodeName(): its text and the offset just past its wire form. */
export interface DnsNameRead {
  /** Labels joined by ".", no trailing dot; "" for the root name. */
  name: string;
  /** Offset in the list of the first byte after this name (after the pointer, if one ended it). */
  next: number;
}

/** Returns true if `code` may appear in a label we hand out as text: printable ASCII other than "." */
function labelByteOk(code: number): boolean {
  return code > 0x20 && code < 0x7f && code !== DOT;
}

/**
 * Returns the name starting at `offset` in `list`, or null if it is malformed:
 * it runs past the end, uses a reserved label type (0x40, 0x80), a pointer
 * where `options.compression` is off, a pointer that does not point strictly
 * backwards, a label with a byte outside printable ASCII or a ".", or is longer
 * than 255 bytes in wire form. Costs O(wire length) and allocates the string.
 * @example decodeName(Uint8Array.of(3, 0x63, 0x6f, 0x6d, 0), 0) // { name: "com", next: 5 }
 */
export function decodeName(list: Uint8Array, offset: number, options: DnsNameDecodeOptions = {}): DnsNameRead | null {
  const compression = options.compression ?? false;
  let pos = offset;
  let next = -1;
  let wireLen = 0;
  let name = "";
  for (;;) {
    if (pos < 0 || pos >= list.length) return null;
    const len = list[pos]!;
    if ((len & POINTER_MASK) === POINTER_MASK) {
      if (!compression || pos + 1 >= list.length) return null;
      const target = ((len & ~POINTER_MASK) << 8) | list[pos + 1]!;
      // Strictly backwards: the chain cannot loop and ends within list.length steps.
      if (target >= pos) return null;
      if (next < 0) next = pos + 2;
      pos = target;
      continue;
    }
    if (len & POINTER_MASK) return null;
    wireLen += len + 1;
    if (wireLen > MAX_NAME_WIRE_LEN) return null;
    if (len === 0) break;
    if (pos + 1 + len > list.length) return null;
    if (name.length > 0) name += ".";
    for (let i = pos + 1; i <= pos + len; i++) {
      const code = list[i]!;
      if (!labelByteOk(code)) return null;
      name += String.fromCharCode(code);
    }
    pos += 1 + len;
  }
  return { name, next: next < 0 ? pos + 1 : next };
}

/**
 * Returns every name of a name list (names back to back, filling `list`), or
 * null if any name is malformed (see decodeName()), a name is the root name
 * (unless `options.padding`, where a zero byte starts padding that must be all
 * zeros to the end), or the list is cut in the middle of a name. An empty list
 * gives []. Bounded: each name read advances by at least one byte.
 * @example decodeNameList(Uint8Array.of(1, 0x61, 0, 1, 0x62, 0)) // ["a", "b"]
 */
export function decodeNameList(list: Uint8Array, options: DnsNameDecodeOptions = {}): string[] | null {
  const names: string[] = [];
  let pos = 0;
  while (pos < list.length) {
    if (list[pos] === 0) {
      if (!options.padding) return null;
      for (let i = pos; i < list.length; i++) if (list[i] !== 0) return null;
      break;
    }
    const read = decodeName(list, pos, options);
    if (!read) return null;
    names.push(read.name);
    pos = read.next;
  }
  return names;
}

/** Returns the labels of `name` (a trailing dot is allowed), or null if a label is empty, too long or not printable ASCII. */
function splitLabels(name: string): string[] | null {
  const text = name.endsWith(".") ? name.slice(0, -1) : name;
  if (text.length === 0) return [];
  const labels = text.split(".");
  let wireLen = 1;
  for (const label of labels) {
    if (label.length === 0 || label.length > MAX_LABEL_LEN) return null;
    for (let i = 0; i < label.length; i++) if (!labelByteOk(label.charCodeAt(i))) return null;
    wireLen += label.length + 1;
  }
  return wireLen <= MAX_NAME_WIRE_LEN ? labels : null;
}

/** Writes `label` at `pos` as a length byte and its characters; returns the offset after it. */
function writeLabel(out: Uint8Array, pos: number, label: string): number {
  out[pos++] = label.length;
  for (let i = 0; i < label.length; i++) out[pos++] = label.charCodeAt(i);
  return pos;
}

/**
 * Returns the length of `name` in uncompressed wire form, or -1 if it is not a
 * valid name (empty label, label over 63 bytes, non-printable ASCII, over 255
 * bytes in all). The root name ("" or ".") is 1 byte.
 * @example nameWireLength("example.org") // 13
 */
export function nameWireLength(name: string): number {
  const labels = splitLabels(name);
  if (!labels) return -1;
  let len = 1;
  for (const label of labels) len += label.length + 1;
  return len;
}

/**
 * Writes `name` uncompressed into `out` at `offset` and returns the offset just
 * past it, or -1 if the name is invalid (see nameWireLength()) or does not fit.
 * @example encodeName("example.org", buf, 0) // 13
 */
export function encodeName(name: string, out: Uint8Array, offset: number): number {
  const labels = splitLabels(name);
  if (!labels) return -1;
  let len = 1;
  for (const label of labels) len += label.length + 1;
  if (offset < 0 || offset + len > out.length) return -1;
  let pos = offset;
  for (const label of labels) pos = writeLabel(out, pos, label);
  out[pos++] = 0;
  return pos;
}

/**
 * Writes the name list `names` into `out` at `offset` and returns the offset
 * just past it, or -1 if a name is invalid or the list does not fit. With
 * `compress`, a name whose tail (a whole suffix of labels, compared without
 * regard to case) was already written ends in a pointer to it; pointer offsets
 * count from `offset`, as RFC 3397 section 2 wants. Nothing past the returned
 * offset is written.
 * @example encodeNameList(["a.example", "b.example"], buf, 0, true) // 15: 1a 7example 0, 1b c0 02
 */
export function encodeNameList(names: readonly string[], out: Uint8Array, offset: number, compress = false): number {
  const seen = new Map<string, number>();
  let pos = offset;
  for (const name of names) {
    const labels = splitLabels(name);
    if (!labels || labels.length === 0) return -1;
    let done = false;
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      const earlier = compress ? seen.get(suffix) : undefined;
      if (earlier !== undefined) {
        if (pos + 2 > out.length) return -1;
        out[pos++] = POINTER_MASK | (earlier >>> 8);
        out[pos++] = earlier & 0xff;
        done = true;
        break;
      }
      const label = labels[i]!;
      if (pos + 1 + label.length > out.length) return -1;
      // Pointers carry 14 bits of offset: later labels are simply not targets.
      if (pos - offset < 0x4000 && !seen.has(suffix)) seen.set(suffix, pos - offset);
      pos = writeLabel(out, pos, label);
    }
    if (!done) {
      if (pos + 1 > out.length) return -1;
      out[pos++] = 0;
    }
  }
  return pos;
}
