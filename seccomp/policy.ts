// SPDX-License-Identifier: GPL-2.0-or-later
// policy.ts - the system calls pasta and passt may make once they serve traffic
//
// Two sources, as upstream's seccomp.sh has one: what our own code makes (the
// `@syscalls` tags in src/ and syscalls/, checked by tests/unit/seccomp.test.ts),
// and what the Bun runtime makes on its own threads while we run (measured with
// `strace -f -c` on a busy pasta, and from BUN-FFI.md: GC, JIT and allocator
// threads). Start-up calls (unshare, setns, execve, mount...) are not here: the
// filter is installed after start-up, and children forked before it keep none.

/** Calls made by the Bun runtime itself: threads, memory, GC, signals, timekeeping. */
export const RUNTIME_SYSCALLS = [
  "futex", "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "membarrier",
  "clone", "clone3", "set_robust_list", "rseq", "gettid", "getpid", "tgkill",
  "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack", "restart_syscall",
  "sched_yield", "sched_getaffinity", "getpriority", "setpriority",
  "nanosleep", "clock_nanosleep", "clock_gettime", "gettimeofday",
  "getrandom", "prctl", "openat", "newfstatat", "fstat", "statx", "lseek", "readlink",
  "readlinkat", "getrusage", "sysinfo", "uname", "getcwd", "prlimit64",
  "exit", "exit_group",
] as const;

/** Calls of the data path and of the loop, after start-up. */
export const DATA_PATH_SYSCALLS = [
  "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "ftruncate", "fsync",
  "epoll_wait", "epoll_pwait", "epoll_ctl", "timerfd_create", "timerfd_settime", "timerfd_gettime",
  "socket", "bind", "connect", "listen", "accept4", "shutdown",
  "getsockname", "getpeername", "getsockopt", "setsockopt",
  "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
  "splice", "pipe2", "fcntl", "ioctl", "dup", "dup3",
  "waitid", "wait4", "kill", "pidfd_open", "pidfd_send_signal",
  "inotify_add_watch", "inotify_init1", "unlink", "unlinkat",
] as const;

/** Every call allowed once the filter is installed. */
export const ALLOWED_SYSCALLS: readonly string[] = [...new Set([...RUNTIME_SYSCALLS, ...DATA_PATH_SYSCALLS])].sort();

/**
 * Calls our code makes only before the filter goes in (namespace set-up, the
 * command's fork and exec, daemonizing): their `@syscalls` tags need no entry.
 */
export const STARTUP_ONLY_SYSCALLS = [
  "unshare", "setns", "execve", "fork", "vfork", "clone", "sethostname", "setresuid", "setgroups",
  "setresgid", "close_range", "chdir", "umask", "fchmod", "setsid", "memfd_create", "eventfd2",
  "signalfd4", "getppid", "getuid", "getgid", "socketpair", "epoll_create1",
] as const;
