// SPDX-License-Identifier: GPL-2.0-or-later
// mod.ts - build and install the seccomp filter for this architecture

import { seccompInstall } from "../syscalls/libc.ts";
import { archTable, buildFilter, encodeFilter, syscallNumbers } from "./bpf.ts";
import { ALLOWED_SYSCALLS } from "./policy.ts";

/** Returns the encoded filter of ALLOWED_SYSCALLS for `arch`, or null for an architecture we have no table for. */
export function filterFor(arch: string = process.arch): Uint8Array | null {
  const t = archTable(arch);
  if (!t) return null;
  return encodeFilter(buildFilter(t.audit, syscallNumbers(ALLOWED_SYSCALLS, t.numbers), arch === "x64"));
}

/**
 * Confines the process to ALLOWED_SYSCALLS, all threads, for good: call it once
 * start-up is over. Returns null when done, or why it was not (to be logged).
 */
export function confine(): string | null {
  const filter = filterFor();
  if (!filter) return `no seccomp table for ${process.arch}`;
  const r = seccompInstall(filter);
  if (r < 0) return `seccomp: errno ${-r}`;
  if (r > 0) return `seccomp: thread ${r} could not be synchronised`;
  return null;
}
