// SPDX-License-Identifier: GPL-2.0-or-later
// setup.ts - bun:test preload: fixed seed note and shared test environment checks

/** Seed used by every randomised test, so a failure can be replayed (gVisor uses 42 too). */
export const TEST_SEED = 42;
