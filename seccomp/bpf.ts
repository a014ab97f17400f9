// SPDX-License-Identifier: GPL-2.0-or-later
// bpf.ts - the seccomp filter: a classic BPF program allowing a list of system calls
//
// The program (seccomp(2), "Pitfalls"):
//   1. load the architecture; anything but ours is killed (a 32-bit or x32 entry
//      point would let the same numbers mean other calls);
//   2. load the call number; on x86_64, numbers with the x32 bit are killed;
//   3. compare against the allowed numbers, sorted, with a binary search
//      (at most log2(n) + 1 comparisons per call, as upstream's seccomp.sh);
//   4. allowed: SECCOMP_RET_ALLOW; otherwise SECCOMP_RET_KILL_PROCESS.
// Each instruction is struct sock_filter { u16 code; u8 jt; u8 jf; u32 k } in
// host byte order, 8 bytes.

import { AARCH64, X86_64 } from "./numbers.ts";

/** BPF opcodes used here (linux/bpf_common.h). */
const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_RET_K = 0x06; // BPF_RET | BPF_K

/** Offsets in struct seccomp_data. */
const DATA_NR = 0;
const DATA_ARCH = 4;

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;

/** AUDIT_ARCH_* values (linux/audit.h). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
const X32_SYSCALL_BIT = 0x40000000;

/** One BPF instruction. */
export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Returns the audit architecture and the number table for `arch` (process.arch), or null. */
export function archTable(arch: string): { audit: number; numbers: Readonly<Record<string, number>> } | null {
  if (arch === "x64") return { audit: AUDIT_ARCH_X86_64, numbers: X86_64 };
  if (arch === "arm64") return { audit: AUDIT_ARCH_AARCH64, numbers: AARCH64 };
  return null;
}

/** Returns the sorted, distinct numbers of `names` on an architecture; names it lacks are skipped. */
export function syscallNumbers(names: readonly string[], numbers: Readonly<Record<string, number>>): number[] {
  const out = new Set<number>();
  for (const n of names) {
    const nr = numbers[n];
    if (nr === undefined) throw new RangeError(`seccomp: no number known for ${n}`);
    if (nr >= 0) out.add(nr);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Returns the filter program allowing exactly `allowed` (sorted numbers) on `audit`,
 * killing the process on anything else.
 */
export function buildFilter(audit: number, allowed: readonly number[], x32Check: boolean): Insn[] {
  const prog: Insn[] = [];
  const ALLOW = -1;
  const KILL = -2;
  // Jumps are relative and forward only: targets are resolved once the program is laid out.
  const fixups: { at: number; jt: number; jf: number }[] = [];
  const emit = (code: number, k: number, jt = 0, jf = 0): number => {
    prog.push({ code, jt: 0, jf: 0, k: k >>> 0 });
    fixups.push({ at: prog.length - 1, jt, jf });
    return prog.length - 1;
  };
  emit(BPF_LD_W_ABS, DATA_ARCH);
  emit(BPF_JMP_JEQ_K, audit, 0, KILL); // jt 0: fall through
  emit(BPF_LD_W_ABS, DATA_NR);
  if (x32Check) emit(BPF_JMP_JGE_K, X32_SYSCALL_BIT, KILL, 0);

  // Binary search over [lo, hi): each node either splits (JGE) or tests equality.
  const labels = new Map<number, number>(); // node id -> instruction index
  let nextNode = 1;
  const pending: { node: number; lo: number; hi: number }[] = [];
  const node = (lo: number, hi: number): number => {
    const id = nextNode++;
    pending.push({ node: id, lo, hi });
    return id;
  };
  const root = node(0, allowed.length);
  // Node ids are encoded as targets >= 1 in fixups; ALLOW/KILL are negative; 0 = next.
  while (pending.length) {
    const { node: id, lo, hi } = pending.shift()!;
    labels.set(id, prog.length);
    if (hi - lo <= 0) {
      emit(BPF_RET_K, SECCOMP_RET_KILL_PROCESS);
    } else if (hi - lo <= 3) {
      for (let i = lo; i < hi; i++) emit(BPF_JMP_JEQ_K, allowed[i]!, ALLOW, 0);
      emit(BPF_RET_K, SECCOMP_RET_KILL_PROCESS);
    } else {
      const mid = (lo + hi) >>> 1;
      const right = node(mid, hi);
      const left = node(lo, mid);
      emit(BPF_JMP_JGE_K, allowed[mid]!, right, left);
    }
  }
  void root;
  const allowAt = prog.length;
  prog.push({ code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW });
  const killAt = prog.length;
  prog.push({ code: BPF_RET_K, jt: 0, jf: 0, k: SECCOMP_RET_KILL_PROCESS });

  const target = (from: number, t: number): number => {
    if (t === 0) return 0;
    const to = t === ALLOW ? allowAt : t === KILL ? killAt : labels.get(t)!;
    const off = to - from - 1;
    if (off < 0 || off > 255) throw new RangeError(`seccomp: jump of ${off} from ${from}`);
    return off;
  };
  for (const f of fixups) {
    const insn = prog[f.at]!;
    insn.jt = target(f.at, f.jt);
    insn.jf = target(f.at, f.jf);
  }
  return prog;
}

/** Returns the program as struct sock_filter[] bytes, host order. */
export function encodeFilter(prog: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const dv = new DataView(out.buffer);
  prog.forEach((insn, i) => {
    dv.setUint16(i * 8, insn.code, true);
    out[i * 8 + 2] = insn.jt;
    out[i * 8 + 3] = insn.jf;
    dv.setUint32(i * 8 + 4, insn.k, true);
  });
  return out;
}

/** Runs `prog` on (arch, nr) as the kernel would; returns the action. For tests. */
export function runFilter(prog: readonly Insn[], arch: number, nr: number): number {
  let acc = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const insn = prog[pc]!;
    switch (insn.code) {
      case BPF_LD_W_ABS:
        acc = insn.k === DATA_ARCH ? arch : insn.k === DATA_NR ? nr : 0;
        break;
      case BPF_JMP_JEQ_K:
        pc += acc === insn.k ? insn.jt : insn.jf;
        break;
      case BPF_JMP_JGE_K:
        pc += acc >>> 0 >= insn.k ? insn.jt : insn.jf;
        break;
      case BPF_RET_K:
        return insn.k;
      default:
        throw new Error(`bad opcode ${insn.code}`);
    }
  }
  throw new Error("fell off the end");
}
