// SPDX-License-Identifier: GPL-2.0-or-later
// child.ts - confines itself with our filter, shows allowed calls work, then makes a forbidden one

import { confine } from "../../../seccomp/mod.ts";
import { AF_INET, close, SOCK_DGRAM, socket, socketpair, AF_UNIX, SOCK_STREAM } from "../../../syscalls/mod.ts";
import { writeSync } from "node:fs";

const why = confine();
if (why !== null) {
  writeSync(2, `confine: ${why}\n`);
  process.exit(2);
}
// Allowed: a socket, a write, some garbage for the GC to collect.
const fd = socket(AF_INET, SOCK_DGRAM, 0);
if (fd < 0) process.exit(3);
close(fd);
let junk: number[][] = [];
for (let i = 0; i < 2000; i++) junk.push(new Array(1000).fill(i));
junk = [];
Bun.gc(true);
writeSync(1, "allowed calls ok\n");
if (process.argv[2] === "forbidden") {
  // socketpair is a start-up-only call: the filter kills the process here.
  socketpair(AF_UNIX, SOCK_STREAM, 0, new Int32Array(2));
  writeSync(1, "still alive\n");
}
process.exit(0);
