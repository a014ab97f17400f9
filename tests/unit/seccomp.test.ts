// SPDX-License-Identifier: GPL-2.0-or-later
// seccomp.test.ts - the allow-list, its numbers, and the filter program's decisions

import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  AUDIT_ARCH_AARCH64, AUDIT_ARCH_X86_64, buildFilter, runFilter, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS,
  syscallNumbers,
} from "../../seccomp/bpf.ts";
import { AARCH64, X86_64 } from "../../seccomp/numbers.ts";
import { ALLOWED_SYSCALLS, STARTUP_ONLY_SYSCALLS } from "../../seccomp/policy.ts";

const ROOT = join(import.meta.dir, "../..");

function headerNumbers(path: string, prefix: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = prefix.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|c)$/.test(name)) out.push(p);
  }
  return out;
}

describe("seccomp numbers", () => {
  const x64h = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
  test.skipIf(!existsSync(x64h))("x86_64 numbers equal asm/unistd_64.h", () => {
    const h = headerNumbers(x64h, /^#define __NR_(\w+)\s+(\d+)/);
    for (const [name, nr] of Object.entries(X86_64)) expect([name, nr]).toEqual([name, h.get(name) ?? -1]);
  });

  const generic = "/usr/include/asm-generic/unistd.h";
  test.skipIf(!existsSync(generic))("aarch64 numbers equal asm-generic/unistd.h", () => {
    const h = headerNumbers(generic, /^#define __NR_(\w+)\s+(\d+)/);
    const h3264 = headerNumbers(generic, /^#define __NR3264_(\w+)\s+(\d+)/);
    const want = (name: string): number =>
      name === "newfstatat" ? h3264.get("fstatat")! : (h.get(name) ?? h3264.get(name) ?? -1);
    for (const [name, nr] of Object.entries(AARCH64)) expect([name, nr]).toEqual([name, want(name)]);
  });
});

describe("seccomp policy", () => {
  test("every @syscalls tag in src/ and syscalls/ is allowed or start-up only", () => {
    const known = new Set<string>([...ALLOWED_SYSCALLS, ...STARTUP_ONLY_SYSCALLS, "seccomp"]);
    const missing: string[] = [];
    for (const file of [...sourceFiles(join(ROOT, "src")), ...sourceFiles(join(ROOT, "syscalls"))]) {
      for (const m of readFileSync(file, "utf8").matchAll(/@syscalls([^\n*]*)/g)) {
        for (const name of m[1]!.trim().split(/\s+/)) {
          if (name && !known.has(name)) missing.push(`${name} (${file.slice(ROOT.length + 1)})`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  test("every allowed name has a number on both architectures (or is absent there)", () => {
    for (const name of ALLOWED_SYSCALLS) {
      expect(X86_64[name], name).toBeDefined();
      expect(AARCH64[name], name).toBeDefined();
    }
  });
});

describe("seccomp filter program", () => {
  const allowed = syscallNumbers(ALLOWED_SYSCALLS, X86_64);
  const prog = buildFilter(AUDIT_ARCH_X86_64, allowed, true);
  const allowedSet = new Set(allowed);

  test("allows exactly the listed numbers, 0 to 1023", () => {
    for (let nr = 0; nr < 1024; nr++) {
      expect([nr, runFilter(prog, AUDIT_ARCH_X86_64, nr)]).toEqual([
        nr,
        allowedSet.has(nr) ? SECCOMP_RET_ALLOW : SECCOMP_RET_KILL_PROCESS,
      ]);
    }
  });

  test("kills another architecture and x32 numbers", () => {
    expect(runFilter(prog, AUDIT_ARCH_AARCH64, X86_64.read!)).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runFilter(prog, 0x40000003, X86_64.read!)).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runFilter(prog, AUDIT_ARCH_X86_64, 0x40000000 + X86_64.read!)).toBe(SECCOMP_RET_KILL_PROCESS);
  });

  test.each([0, 1, 2, 3, 4, 7, 64])("a list of %d numbers is searched correctly", (n) => {
    const list = Array.from({ length: n }, (_, i) => i * 3 + 1);
    const p = buildFilter(AUDIT_ARCH_AARCH64, list, false);
    for (let nr = 0; nr < n * 3 + 5; nr++) {
      expect(runFilter(p, AUDIT_ARCH_AARCH64, nr)).toBe(list.includes(nr) ? SECCOMP_RET_ALLOW : SECCOMP_RET_KILL_PROCESS);
    }
  });
});

describe("seccomp in a real process", () => {
  const bun = process.execPath;
  const child = join(ROOT, "tests/integration/seccomp/child.ts");

  test.skipIf(process.arch !== "x64" && process.arch !== "arm64")("a confined process keeps working on allowed calls", () => {
    const r = Bun.spawnSync([bun, child], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString() + r.stderr.toString()).toContain("allowed calls ok");
    expect(r.exitCode).toBe(0);
  });

  test.skipIf(process.arch !== "x64" && process.arch !== "arm64")("a forbidden call kills the process with SIGSYS", () => {
    const r = Bun.spawnSync([bun, child, "forbidden"], { stdout: "pipe", stderr: "pipe" });
    expect(r.stdout.toString()).toContain("allowed calls ok");
    expect(r.stdout.toString()).not.toContain("still alive");
    expect(r.signalCode).toBe("SIGSYS");
  });
});
