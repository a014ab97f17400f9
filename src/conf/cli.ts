// SPDX-License-Identifier: GPL-2.0-or-later
// cli.ts - the command line through citty: one command per executable name, getopt_long(3) scanning, --help, --version
//
// Theory of operation
//
// Each executable name (pasta, passt) is one citty command, built with
// defineCommand() from the option table (options.ts): meta gives the name,
// version and description; args holds every option that name accepts, a
// boolean or a string with its short letter as alias and its placeholder as
// value hint, and pasta's COMMAND operand as a positional. That definition is
// used three ways:
//
// - citty's parseArgs() reads the command line against it, and conf.ts
//   validates only the values citty hands back;
// - citty's renderUsage() renders --help from it;
// - --version prints its meta.
//
// Users rely on getopt_long(3) semantics, as upstream's conf() gives them,
// and citty's parser (node:util parseArgs with strict off, no `multiple`)
// differs on the points below. readCommandLine() therefore scans argv
// itself first, getopt_long style, and gives citty a normalised vector: one
// canonical token per option occurrence, "--name=value" or "--name", then
// "--" and the operands. What citty would get wrong on raw argv:
//
// - long prefixes: `--fore` would be an unknown "fore", not --foreground;
// - the end of options: the first non-option ends them (`pasta ip -4` runs
//   `ip -4`); citty would take -4 for pasta;
// - errors: with strict off an unknown option (-z) vanishes, `--debug=1`
//   becomes true and `--mtu` with no value becomes ""; each must be one
//   line naming the option, and only the scanner sees them;
// - long aliases: --socket-path is folded into --socket while scanning.
//
// Citty can still not round-trip two things in one vector, so the
// normalised vector is cut into segments, each parsed by its own
// parseArgs() call (a usual command line is one segment, one call), with
// the command's args of the options the segment holds:
//
// - a repeated option: citty keeps only the last value, while -t, -u, -T,
//   -U, -D and -S accumulate and every repeat must be applied in argv
//   order. A segment ends before an option it already holds.
// - `--no-X`: citty reads it as the negation of X and reports `X: false`
//   (there is no `no-X` key). Our --no-* options are options of their own
//   that take no value, so `--no-tcp` is read back as `tcp === false`.
//   Segments are cut on that key, so --dhcp-dns and --no-dhcp-dns could
//   never be merged either (today no name accepts both). No --no-* option
//   takes a value (options.test.ts checks), so citty never mistakes one for
//   a value.
//
// The order in which options are applied is the scanner's (argv order):
// citty's result is a record, and it moves negated flags to the end.
//
// Not used from citty: runMain() and runCommand(). Both are asynchronous,
// while conf.ts's parseArgs() is synchronous for its callers; they parse
// once against the whole command (see Cost), which cannot hold repeats; and
// runMain() answers a bad command line with the whole usage before the
// message, where upstream gives one line. Since our command declares help
// and version as options, runMain() would not handle them itself anyway.
// Nor can citty group options: --help is its flat list, in man page order
// (general options, then the name's own) but without upstream's
// "pasta-only options:" heading.
//
// Cost: parseArgs() prepares every arg it is given (camelCase and kebab-case
// aliases, one node:util option each), so it is given only the args the
// vector uses; the whole command would add milliseconds to every start.

import { type ArgDef, type ArgsDef, type CommandDef, type CommandMeta, defineCommand, parseArgs, renderUsage } from "citty";
import { VERSION } from "../version.ts";
import { acceptedBy, findLong, findShort, type Mode, OPTIONS, type OptionDef } from "./options.ts";

/** A bad command line; `message` is one line naming the bad value, without the program name. */
export class ConfError extends Error {
  override name = "ConfError";
}

/** One option occurrence, its value as citty read it back. */
export interface Token {
  readonly def: OptionDef;
  /** The option as the user wrote it, for messages ("-t", "--tcp-ports"). */
  readonly typed: string;
  /** The option's argument; "" for an option that takes none. */
  readonly value: string;
}

/** The command line of one run, read by readCommandLine(). */
export interface CommandLine {
  /** Operating mode: the executable's name, except that --vhost-user makes it passt. */
  readonly mode: Mode;
  /** The options in argv order, up to `error`. */
  readonly options: readonly Token[];
  /** Operands: pasta's COMMAND and its arguments, or a PID; empty if `error` is set. */
  readonly operands: readonly string[];
  /**
   * What ended the options early, for the caller to throw after applying
   * `options` (so an earlier --help or bad value is seen first, as upstream):
   * a scanning error, or an option the mode's command does not declare; null
   * if the whole command line was read.
   */
  readonly error: ConfError | null;
}

/** One executable name as a citty command, with the typed parts we read back. */
interface Personality {
  readonly meta: Required<Pick<CommandMeta, "name" | "version" | "description">>;
  /** Every option the name accepts, by canonical long name, plus pasta's operand. */
  readonly args: Readonly<Record<string, ArgDef>>;
  /** The citty command made of `meta` and `args`. */
  readonly command: CommandDef<ArgsDef>;
}

const DESCRIPTION: Readonly<Record<Mode, string>> = {
  pasta: "Unprivileged user-mode networking for network namespaces",
  passt: "Unprivileged user-mode networking for virtual machines",
};

/** pasta's operands, as one positional argument (citty's `_` holds them all). */
const OPERAND: ArgDef = {
  type: "positional",
  required: false,
  description: "Command and arguments to run in a new user and network namespace (default: $SHELL), " +
    "or the PID of a process whose namespaces to join",
};

/** Returns the citty argument for option `def`: a flag, or a string with its placeholder. */
function argOf(def: OptionDef): ArgDef {
  const description = def.aliases.length === 0
    ? def.help
    : `${def.help} (also ${def.aliases.map((a) => `--${a}`).join(", ")})`;
  const alias = def.short === null ? {} : { alias: def.short };
  return def.arg === null
    ? { type: "boolean", description, ...alias }
    : { type: "string", description, valueHint: def.arg, ...alias };
}

function personalityOf(mode: Mode): Personality {
  const args: Record<string, ArgDef> = {};
  for (const def of OPTIONS) if (acceptedBy(def, mode)) args[def.name] = argOf(def);
  if (mode === "pasta") args.command = OPERAND;
  const meta = { name: mode, version: VERSION, description: DESCRIPTION[mode] };
  return { meta, args, command: defineCommand({ meta, args }) };
}

const PERSONALITIES: Readonly<Record<Mode, Personality>> = {
  pasta: personalityOf("pasta"),
  passt: personalityOf("passt"),
};

/**
 * Returns the citty command of executable `mode`: meta (name, version,
 * description) and args, one per option `mode` accepts.
 * @example command("passt").args // { debug: { type: "boolean", alias: "d", ... }, ... }
 */
export function command(mode: Mode): CommandDef<ArgsDef> {
  return PERSONALITIES[mode].command;
}

/** Returns true if the command of `mode` declares option `def`. */
function declares(mode: Mode, def: OptionDef): boolean {
  return Object.hasOwn(PERSONALITIES[mode].args, def.name);
}

/** One option occurrence as the scanner found it. */
interface Scanned {
  readonly def: OptionDef;
  readonly typed: string;
  /** The canonical token handed to citty: "--tcp-ports=22", "--foreground". */
  readonly token: string;
}

interface Scan {
  readonly found: readonly Scanned[];
  readonly operands: readonly string[];
  /** The scanning error that ended the options, or null. */
  readonly error: ConfError | null;
}

/** Returns the canonical token for option `def` with argument `value` (null for none). */
function tokenOf(def: OptionDef, value: string | null): string {
  return value === null ? `--${def.name}` : `--${def.name}=${value}`;
}

/**
 * Splits argv into option occurrences and operands, getopt_long(3) style with
 * option parsing ending at "--" or the first non-option, as upstream's "+"
 * option string: short clusters (-4f), attached short values (-t22), long
 * values after '=' or as the next argument, unambiguous long prefixes
 * (--fore), no optional arguments. Stops at the first error.
 */
function scan(argv: readonly string[]): Scan {
  const found: Scanned[] = [];
  const fail = (message: string): Scan => ({ found, operands: [], error: new ConfError(message) });
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return { found, operands: argv.slice(i + 1), error: null };
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const typedName = eq < 0 ? a : a.slice(0, eq);
      const def = findLong(typedName.slice(2));
      if (def === null) return fail(`${typedName}: unknown option`);
      if (!("name" in def)) return fail(`${typedName}: ambiguous option (${def.join(", ")})`);
      const typed = `--${def.name}` === typedName || def.aliases.includes(typedName.slice(2))
        ? typedName
        : `--${def.name}`;
      if (!def.arg) {
        if (eq >= 0) return fail(`${typed}: option takes no argument`);
        found.push({ def, typed, token: tokenOf(def, null) });
        continue;
      }
      const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) return fail(`${typed}: option requires an argument`);
      found.push({ def, typed, token: tokenOf(def, value) });
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const letter = a[j]!;
        const def = findShort(letter);
        if (!def) return fail(`-${letter}: unknown option`);
        if (!def.arg) {
          found.push({ def, typed: `-${letter}`, token: tokenOf(def, null) });
          continue;
        }
        const value = j + 1 < a.length ? a.slice(j + 1) : argv[++i];
        if (value === undefined) return fail(`-${letter}: option requires an argument`);
        found.push({ def, typed: `-${letter}`, token: tokenOf(def, value) });
        break;
      }
      continue;
    }
    return { found, operands: argv.slice(i), error: null };
  }
  return { found, operands: [], error: null };
}

/** Returns the key citty stores option `def` under: its name, or X for a flag `no-X`. */
function cittyKey(def: OptionDef): string {
  return def.arg === null && def.name.startsWith("no-") ? def.name.slice(3) : def.name;
}

/** Returns the value citty read for `def` from `parsed`; throws if citty lost the option. */
function readBack(parsed: Record<string, unknown>, def: OptionDef): string {
  const key = cittyKey(def);
  const got = parsed[key];
  if (def.arg !== null && typeof got === "string") return got;
  // A flag reads back true, or false under X for `--no-X`.
  if (def.arg === null && got === (key === def.name)) return "";
  throw new Error(`cli: citty read --${def.name} back as ${JSON.stringify(got)}`);
}

/**
 * Returns the options in `found` with their values as citty's parseArgs()
 * reads the normalised vector against `mode`'s command, and the operands as
 * citty's `_`. See the Theory of operation for the segments.
 */
function decode(mode: Mode, found: readonly Scanned[], operands: readonly string[]): {
  options: Token[];
  operands: string[];
} {
  const { args } = PERSONALITIES[mode];
  const options: Token[] = [];
  for (let start = 0; ; ) {
    const keys = new Set<string>();
    let end = start;
    for (; end < found.length && !keys.has(cittyKey(found[end]!.def)); end++) keys.add(cittyKey(found[end]!.def));
    const segment = found.slice(start, end);
    const last = end === found.length;
    const vector = segment.map((s) => s.token);
    if (last) vector.push("--", ...operands);
    // Only the args the vector uses: see Cost in the Theory of operation.
    const used: Record<string, ArgDef> = {};
    for (const s of segment) used[s.def.name] = args[s.def.name]!;
    const parsed = parseArgs(vector, used);
    for (const s of segment) options.push({ def: s.def, typed: s.typed, value: readBack(parsed, s.def) });
    if (last) return { options, operands: parsed._ };
    start = end;
  }
}

/**
 * Returns the command line of executable `name` given `argv` without the
 * program name: the mode, then the options in argv order and the operands as
 * citty reads them. Never throws for bad input: the first scanning error, or
 * the first option the mode does not accept, ends the options and is
 * returned as `error`.
 * @example readCommandLine("pasta", ["-t22", "ip", "addr"]).operands // ["ip", "addr"]
 */
export function readCommandLine(name: Mode, argv: readonly string[]): CommandLine {
  const { found, operands, error } = scan(argv);
  // --vhost-user selects the mode before anything else (upstream conf_mode()).
  const mode: Mode = found.some((s) => s.def.name === "vhost-user") ? "passt" : name;
  const stop = found.findIndex((s) => !declares(mode, s.def));
  if (stop >= 0) {
    const s = found[stop]!;
    const refused = new ConfError(`${s.typed} is for ${s.def.accepted} mode only`);
    return { mode, options: decode(mode, found.slice(0, stop), []).options, operands: [], error: refused };
  }
  const read = decode(mode, found, error ? [] : operands);
  return { mode, options: read.options, operands: read.operands, error };
}

/**
 * Returns the --help text for executable `name`: citty's rendering of its
 * command, with every option the man page lists for that name (general
 * options, then the name's own), a short alias before the long name and the
 * placeholder as value hint. Options the man page lists under the other name
 * are left out even where upstream tolerates them (-F for pasta, --no-splice
 * for passt), as upstream's own --help does. citty colours the text for a
 * terminal; with `colour` false the colour codes are taken out. The padding
 * citty leaves at the ends of lines is trimmed.
 */
export async function usage(name: Mode, colour = false): Promise<string> {
  const { meta, args } = PERSONALITIES[name];
  const listed: Record<string, ArgDef> = {};
  for (const def of OPTIONS) {
    if (declares(name, def) && (def.section === "common" || def.section === name)) listed[def.name] = args[def.name]!;
  }
  if (args.command) listed.command = args.command;
  const text = await renderUsage(defineCommand({ meta, args: listed }));
  return `${(colour ? text : Bun.stripANSI(text)).replace(/[ \t]+$/gm, "")}\n`;
}

/**
 * Returns the line --version prints for executable `name`, from its command's meta.
 * @example versionLine("passt") // "passt 0.1.0"
 */
export function versionLine(name: Mode): string {
  const { meta } = PERSONALITIES[name];
  return `${meta.name} ${meta.version}`;
}
