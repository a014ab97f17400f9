// SPDX-License-Identifier: GPL-2.0-or-later
// report.ts - results of perf/run.ts: medians, ratios to Debian's pasta, a text table, Markdown, SVG
//
// Every figure is measured several times; the median is quoted, and the ratios are of medians.
// The ratio is always ours / Debian (and slirp4netns / Debian), whichever way is better for the
// metric: `better` says which, and the chart colours each bar by it.

/** One measured quantity, with its samples per tool. */
export interface Metric {
  /** Stable key in the JSON file, e.g. "tcp4_tap_n2h_65520". */
  readonly id: string;
  /** Row label. */
  readonly label: string;
  readonly unit: string;
  /** Whether a higher or a lower value is better. */
  readonly better: "higher" | "lower";
  /** Decimal places shown. */
  readonly digits: number;
  /** Samples per tool id (one per repetition). */
  readonly samples: Record<string, number[]>;
  /** Why a tool has no value (e.g. "no splice path"), per tool id. */
  readonly na: Record<string, string>;
  /** Kept in the JSON file only (context for other rows, such as TCP retransmissions). */
  readonly hidden?: boolean;
}

/** Returns the median of `xs` (mean of the middle two for an even count), or null if empty. */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Returns median(a) / median(b), or null if either is missing or b is zero. */
export function ratioOf(m: Metric, a: string, b: string): number | null {
  const x = median(m.samples[a] ?? []);
  const y = median(m.samples[b] ?? []);
  return x === null || y === null || y === 0 ? null : x / y;
}

/** Formats a value with the metric's precision and thousands separators for large numbers. */
function fmt(m: Metric, v: number | null): string {
  if (v === null) return "n/a";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  return v.toFixed(m.digits);
}

function fmtRatio(r: number | null): string {
  return r === null ? "n/a" : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

/** Returns "min-max" of the samples, or "" for fewer than two. */
function spread(m: Metric, tool: string): string {
  const xs = m.samples[tool] ?? [];
  if (xs.length < 2) return "";
  return `${fmt(m, Math.min(...xs))}-${fmt(m, Math.max(...xs))}`;
}

/** Cells of one row: label, unit, one median per tool, then ratios ours/Debian and slirp/Debian. */
function cells(m: Metric, tools: readonly string[]): string[] {
  const row = [m.label, `${m.unit} ${m.better === "higher" ? "↑" : "↓"}`];
  for (const t of tools) {
    const v = median(m.samples[t] ?? []);
    row.push(v === null && m.na[t] ? `n/a${m.na[t] ? "*" : ""}` : fmt(m, v));
  }
  row.push(fmtRatio(ratioOf(m, "ours", "debian")), fmtRatio(ratioOf(m, "slirp4netns", "debian")));
  return row;
}

/** Returns the footnotes (one per distinct n/a reason) of a table. */
function footnotes(metrics: readonly Metric[], labels: Record<string, string>): string[] {
  const notes = new Set<string>();
  for (const m of metrics) for (const [t, why] of Object.entries(m.na)) notes.add(`${labels[t] ?? t}: ${why}`);
  return [...notes].map((n) => `* ${n}`);
}

/** Renders an aligned plain-text table for the terminal. */
export function textTable(metrics: readonly Metric[], tools: readonly string[], labels: Record<string, string>): string {
  const head = ["metric", "unit", ...tools.map((t) => labels[t] ?? t), "ours/Debian", "slirp/Debian"];
  const rows = [head, ...metrics.map((m) => cells(m, tools))];
  const width = head.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? "")].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join("  ").trimEnd();
  const rule = width.map((w) => "-".repeat(w)).join("  ");
  return [line(head), rule, ...rows.slice(1).map(line), ...footnotes(metrics, labels)].join("\n");
}

/** Renders the same table in Markdown, with the spread (min-max) of ours and Debian's samples. */
export function markdownTable(metrics: readonly Metric[], tools: readonly string[], labels: Record<string, string>): string {
  const head = ["metric", "unit", ...tools.map((t) => labels[t] ?? t), "ours/Debian", "slirp/Debian", "spread ours", "spread Debian"];
  const rows = metrics.map((m) => [...cells(m, tools), spread(m, "ours"), spread(m, "debian")]);
  const align = head.map((_, i) => (i < 2 ? "---" : "---:"));
  const md = (r: string[]) => `| ${r.join(" | ")} |`;
  const notes = footnotes(metrics, labels).map((n) => `\\${n}`);
  return [md(head), md(align), ...rows.map(md), "", ...notes].join("\n");
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * Renders a horizontal bar chart of ours / Debian per metric: log scale, bars grow from the 1.0
 * line, green where ours is better for that metric, red where worse. `subtitle` says when and
 * where it was measured.
 */
export function ratioSvg(metrics: readonly Metric[], subtitle: string): string {
  const rows = metrics
    .map((m) => ({ m, r: ratioOf(m, "ours", "debian") }))
    .filter((x): x is { m: Metric; r: number } => x.r !== null && x.r > 0);
  const labelW = 330, plotW = 520, valueW = 70, rowH = 22, top = 64, bottom = 56;
  const width = labelW + plotW + valueW + 20;
  const height = top + rows.length * rowH + bottom;
  // Whole decades around every ratio, at least 0.1..10.
  // (The factor 2 leaves room for the value printed past the end of the bar.)
  const lo = Math.min(-1, Math.floor(Math.log10(Math.min(...rows.map((x) => x.r), 1) / 2)));
  const hi = Math.max(1, Math.ceil(Math.log10(Math.max(...rows.map((x) => x.r), 1) * 2)));
  const xOf = (r: number) => labelW + ((Math.log10(r) - lo) / (hi - lo)) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Our pasta / Debian's pasta (log scale)</text>`,
    `<text x="10" y="42" fill="#555">${esc(subtitle)}. Green: ours better; red: ours worse (↑ higher is better, ↓ lower is better).</text>`,
  );
  const plotTop = top - 6, plotBottom = top + rows.length * rowH;
  for (let d = lo; d <= hi; d++) {
    for (const k of d < hi ? [1, 2, 5] : [1]) {
      const r = k * 10 ** d;
      const x = xOf(r).toFixed(1);
      const major = k === 1;
      out.push(`<line x1="${x}" y1="${plotTop}" x2="${x}" y2="${plotBottom}" stroke="${major ? "#bbb" : "#e4e4e4"}"/>`);
      out.push(`<text x="${x}" y="${plotBottom + 16}" text-anchor="middle" fill="#555">${r >= 1 ? r : r.toPrecision(1)}×</text>`);
    }
  }
  rows.forEach(({ m, r }, i) => {
    const y = top + i * rowH;
    const good = m.better === "higher" ? r >= 1 : r <= 1;
    const x0 = xOf(1), x1 = xOf(r);
    const arrow = m.better === "higher" ? "↑" : "↓";
    if (i % 2 === 0) out.push(`<rect x="0" y="${y - 3}" width="${width}" height="${rowH}" fill="#f6f6f6"/>`);
    out.push(`<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${esc(m.label)} ${arrow}</text>`);
    out.push(
      `<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowH - 7}" fill="${good ? "#2e9d4f" : "#d0423b"}"/>`,
    );
    const tx = r >= 1 ? x1 + 4 : x1 - 4;
    out.push(`<text x="${tx.toFixed(1)}" y="${y + 12}" text-anchor="${r >= 1 ? "start" : "end"}" font-weight="bold">${fmtRatio(r)}</text>`);
  });
  const x1 = xOf(1).toFixed(1);
  out.push(`<line x1="${x1}" y1="${plotTop}" x2="${x1}" y2="${plotBottom}" stroke="black" stroke-width="2"/>`);
  out.push(`<text x="${x1}" y="${plotBottom + 34}" text-anchor="middle" font-weight="bold">1.0 = same as Debian's pasta</text>`);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** Renders rows of cells as an aligned plain-text table; the first `left` columns align left. */
export function gridText(head: readonly string[], rows: readonly (readonly string[])[], left = 1): string {
  const all = [head, ...rows];
  const width = head.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? "")].length)));
  const line = (r: readonly string[]) =>
    r.map((c, i) => (i < left ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join("  ").trimEnd();
  return [line(head), width.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Renders rows of cells as a Markdown table; the first `left` columns align left. */
export function gridMarkdown(head: readonly string[], rows: readonly (readonly string[])[], left = 1): string {
  const md = (r: readonly string[]) => `| ${r.join(" | ")} |`;
  return [md(head), md(head.map((_, i) => (i < left ? "---" : "---:"))), ...rows.map(md)].join("\n");
}
