// SPDX-License-Identifier: GPL-2.0-or-later
// version.ts - the program version, read from package.json

import pkg from "../package.json";

/** Version string of this build, e.g. "0.1.0" (package.json "version"). */
export const VERSION: string = pkg.version;

