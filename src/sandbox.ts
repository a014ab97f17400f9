// SPDX-License-Identifier: GPL-2.0-or-later
// sandbox.ts - what pasta and passt give up once start-up is over (upstream's isolate_postfork)
//
// After the namespace, the command, the sockets and the daemon are set up, the
// process no longer needs to create namespaces, execute programs or change
// credentials: a seccomp filter (seccomp/) limits every thread to the calls the
// data path and the Bun runtime make, and kills the process on any other.

import { readFileSync } from "node:fs";
import { confine } from "../seccomp/mod.ts";
import { errnoName, getuid, setgroupsNone, setresgid, setresuid } from "../syscalls/mod.ts";
import type { Config } from "./conf.ts";
import { die, log } from "./log.ts";

/** Who we become when started as root without --runas: nobody, as upstream. */
const NOBODY = 65534;

/** Returns the id of user or group `name` from an /etc/passwd or /etc/group text, or null. */
export function lookupId(table: string, name: string): number | null {
  for (const line of table.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  return null;
}

/** Returns [uid, gid] for --runas UID[:GID] or LOGIN[:GROUP]; dies naming a bad value. */
export function runasIds(runas: string | null, read = (p: string) => readFileSync(p, "utf8")): [number, number] {
  if (runas === null) return [NOBODY, NOBODY];
  const [user, group] = runas.split(":") as [string, string | undefined];
  const table = (path: string): string => {
    try {
      return read(path);
    } catch {
      return "";
    }
  };
  const uid = /^\d+$/.test(user) ? Number(user) : lookupId(table("/etc/passwd"), user);
  if (uid === null) die(`--runas ${runas}: no user ${user}`);
  let gid: number | null;
  if (group === undefined) {
    // The user's primary group, or the same number.
    const entry = table("/etc/passwd").split("\n").find((l) => l.split(":")[2] === String(uid));
    gid = entry ? Number(entry.split(":")[3]) : uid;
  } else {
    gid = /^\d+$/.test(group) ? Number(group) : lookupId(table("/etc/group"), group);
  }
  if (gid === null || Number.isNaN(gid)) die(`--runas ${runas}: no group ${group}`);
  return [uid, gid];
}

/** Returns true if we are root of the initial user namespace (uid 0 mapped to 0 for all ids). */
function rootOfInitNs(): boolean {
  if (getuid() !== 0) return false;
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(readFileSync("/proc/self/uid_map", "utf8"));
  } catch {
    return false;
  }
}

/**
 * Gives up root, as upstream does: started as root (of the initial user namespace)
 * or with --runas, we switch to --runas's user and group, default nobody, once
 * everything that needs root is open. Dies if the switch fails.
 */
export function dropPrivileges(conf: Config): void {
  if (conf.runas === null && !rootOfInitNs()) return;
  if (getuid() !== 0) {
    if (conf.runas !== null) log.warn(`--runas ${conf.runas}: not root, keeping our own user`);
    return;
  }
  const [uid, gid] = runasIds(conf.runas);
  let r = setgroupsNone();
  if (r === 0) r = setresgid(gid);
  if (r === 0) r = setresuid(uid);
  if (r < 0) die(`can't switch to user ${uid}, group ${gid}: ${errnoName(r)}`);
  log.debug(`running as user ${uid}, group ${gid}`);
}

/**
 * Drops privileges (see dropPrivileges()) and installs the system call filter;
 * logs, and carries on without the filter, if the kernel refuses it.
 */
export function sandbox(conf: Config): void {
  dropPrivileges(conf);
  const why = confine();
  if (why === null) log.debug("seccomp filter installed");
  else log.warn(`${why}: running without a system call filter`);
}
