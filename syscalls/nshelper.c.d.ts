// SPDX-License-Identifier: GPL-2.0-or-later
// nshelper.c.d.ts - type of nshelper.c imported `with { type: "text" }`: its source text

declare const source: string;
export default source;
