// SPDX-License-Identifier: GPL-2.0-or-later
// mod.ts - the syscalls/ entry point: libc wrappers, errno, constants, layouts, arenas

export * from "./libc.ts";
export * from "./errno.ts";
export * from "./constants.ts";
export * from "./structs.ts";
export * from "./arena.ts";
