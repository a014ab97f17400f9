// SPDX-License-Identifier: GPL-2.0-or-later
// errno.ts - Linux errno values (identical on x86_64 and aarch64) and their names

/**
 * Linux errno values. Wrappers in libc.ts return `-errno` on failure, so a
 * caller compares `n === -Errno.EAGAIN`. Values are checked against
 * `<errno.h>` by tests/unit/syscalls/layout.test.ts.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  EWOULDBLOCK: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOMSG: 42,
  ENODATA: 61,
  ENOLINK: 67,
  EPROTO: 71,
  EOVERFLOW: 75,
  EBADFD: 77,
  EILSEQ: 84,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95,
  ENOTSUP: 95,
  EPFNOSUPPORT: 96,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENETRESET: 102,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ESHUTDOWN: 108,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EDQUOT: 122,
  ECANCELED: 125,
  EOWNERDEAD: 130,
  ERFKILL: 132,
} as const;
export type Errno = (typeof Errno)[keyof typeof Errno];

const NAMES: string[] = [];
for (const [name, value] of Object.entries(Errno)) {
  // The first name listed wins for aliases (EAGAIN over EWOULDBLOCK).
  if (NAMES[value] === undefined) NAMES[value] = name;
}

/**
 * Returns the symbolic name of an errno value, accepting either sign
 * (`errnoName(-9)` is "EBADF"); unknown values come back as "errno N".
 * @example errnoName(-Errno.EAGAIN) // "EAGAIN"
 */
export function errnoName(errno: number): string {
  const n = errno < 0 ? -errno : errno;
  return NAMES[n] ?? `errno ${n}`;
}
