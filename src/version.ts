// SPDX-License-Identifier: GPL-2.0-or-later
// version.ts - the program version, read from package.json

import pkg from "../package.json";

/** Version string of this build, e.g. "0.1.0" (package.json "version"). */
export const VERSION: string = pkg.version;

/**
 * Returns the line --version prints for executable `name`, e.g. "pasta 0.1.0".
 * @example versionText("passt") // "passt 0.1.0"
 */
export function versionText(name: string): string {
  return `${name} ${VERSION}`;
}
