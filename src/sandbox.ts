// SPDX-License-Identifier: GPL-2.0-or-later
// sandbox.ts - what pasta and passt give up once start-up is over (upstream's isolate_postfork)
//
// After the namespace, the command, the sockets and the daemon are set up, the
// process no longer needs to create namespaces, execute programs or change
// credentials: a seccomp filter (seccomp/) limits every thread to the calls the
// data path and the Bun runtime make, and kills the process on any other.

import { confine } from "../seccomp/mod.ts";
import { log } from "./log.ts";

/** Installs the system call filter; logs, and carries on without it, if the kernel refuses. */
export function sandbox(): void {
  const why = confine();
  if (why === null) log.debug("seccomp filter installed");
  else log.warn(`${why}: running without a system call filter`);
}
