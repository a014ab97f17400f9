// SPDX-License-Identifier: GPL-2.0-or-later
// fwd_ports.ts - sets of port numbers whose cost follows their size, not the 65536 ports
//
// Automatic forwarding (fwd_auto.ts) handles sets of ports: what a scan finds bound, what we
// listen on ourselves, what a rule has listeners for. They hold a few ports out of 65536, and
// a map of 65536 bytes walked from end to end costs 0.9 ms warm and 3.0-3.2 ms cold (measured
// in a fresh Bun process: at start-up the loop still runs in JavaScriptCore's interpreter),
// several times per scan. PortSet is the sparse set of Briggs and Torczon ("An efficient
// representation for sparse sets", 1993): a dense list of the members in `list[0, count)` and,
// per port, its index in that list. A port is in the set when its index is below `count` and
// the list holds it there, so stale indexes left behind by clear() or delete() need no reset:
// add, has, delete and clear are O(1), and a walk over the members is O(count).

/** Number of port numbers, 0 included: the size of a port map. */
export const PORT_COUNT = 65536;

/**
 * A set of port numbers in [first, last]. Memory is 4 bytes per port of that range, allocated
 * once; nothing allocates afterwards. Members are listed in `list[0, count)`, in no particular
 * order (delete() moves the last member into the hole).
 * @example
 * const s = new PortSet();
 * s.add(8080); s.add(22);
 * for (let i = 0; i < s.count; i++) console.log(s.list[i]); // 8080, 22
 * s.has(22); // true
 * s.clear(); // O(1)
 */
export class PortSet {
  /** The members, in list[0, count). Read only: change the set through its methods. */
  readonly list: Uint16Array;
  /** Number of members. */
  count = 0;
  /** index[port - first]: where `port` sits in `list`, if it is a member (see has()). */
  private readonly index: Uint16Array;

  /** An empty set of ports in [first, last] (default: every port, 0-65535). */
  constructor(readonly first = 0, readonly last = PORT_COUNT - 1) {
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last >= PORT_COUNT || first > last) {
      throw new RangeError(`PortSet: bad range ${first}-${last}`);
    }
    this.list = new Uint16Array(last - first + 1);
    this.index = new Uint16Array(last - first + 1);
  }

  /** Returns whether `port` is in the set; false for any number outside [first, last]. */
  has(port: number): boolean {
    const i = this.index[port - this.first];
    return i !== undefined && i < this.count && this.list[i] === port;
  }

  /** Adds `port` (no-op if present). Throws RangeError outside [first, last]: a bug of the caller. */
  add(port: number): void {
    const k = port - this.first;
    if (!(k >= 0 && k < this.list.length)) throw new RangeError(`PortSet: port ${port} outside ${this.first}-${this.last}`);
    const i = this.index[k]!;
    if (i < this.count && this.list[i] === port) return;
    this.index[k] = this.count;
    this.list[this.count++] = port;
  }

  /** Removes `port` if present; the last member of `list` takes its place. */
  delete(port: number): void {
    if (!this.has(port)) return;
    const i = this.index[port - this.first]!;
    const moved = this.list[--this.count]!;
    this.list[i] = moved;
    this.index[moved - this.first] = i;
  }

  /** Empties the set, in O(1). */
  clear(): void {
    this.count = 0;
  }

  /** Adds every member of `other`. O(other.count). */
  addAll(other: PortSet): void {
    for (let i = 0; i < other.count; i++) this.add(other.list[i]!);
  }

  /**
   * Removes every member for which `map[port]` is 1 (`map`: a Uint8Array indexed by port
   * number, e.g. built with fill() from ranges). O(count).
   */
  deleteMarked(map: Uint8Array): void {
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const p = this.list[i]!;
      if (map[p] === 1) continue;
      this.list[n] = p;
      this.index[p - this.first] = n++;
    }
    this.count = n;
  }

  /** Removes every member of `other`. O(count). */
  deleteAll(other: PortSet): void {
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const p = this.list[i]!;
      if (other.has(p)) continue;
      this.list[n] = p;
      this.index[p - this.first] = n++;
    }
    this.count = n;
  }

  /** Sorts `list[0, count)` in ascending order, so that walks visit ports in order. O(count log count). */
  sort(): void {
    const members = this.list.subarray(0, this.count);
    members.sort();
    for (let i = 0; i < members.length; i++) this.index[members[i]! - this.first] = i;
  }

  /** Returns the members, ascending, as a new array (logs and tests). */
  toArray(): number[] {
    return Array.from(this.list.subarray(0, this.count)).sort((a, b) => a - b);
  }
}
