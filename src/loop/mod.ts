// SPDX-License-Identifier: GPL-2.0-or-later
// mod.ts - the loop/ entry point: epoll loop, timers, signals, child exit

export * from "./loop.ts";
export * from "./timer.ts";
export * from "./signal.ts";
export * from "./child.ts";
