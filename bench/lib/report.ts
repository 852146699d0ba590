/**
 * The results table: one row per metric, the three targets side by side, Switchboard's ratios
 * to raw Deno and to Socket.IO, and the goal with PASS/FAIL. Also the machine record.
 * @module
 */
import { run } from "../../scripts/support/process.ts";

/** One row of the table (also stored in the JSON). */
export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  /** Values by target key (`switchboard`, `raw`, `socketio`, or a cross-node subject). */
  values: Record<string, number | undefined>;
  /** Text instead of a value (n/a, error, skipped). */
  notes?: Record<string, string>;
  /** Switchboard / raw Deno and Switchboard / Socket.IO. */
  vsRaw?: number;
  vsSocketIo?: number;
  goal?: string;
  /** undefined: no goal, or not measurable in this run. */
  pass?: boolean;
}

/** The machine a run happened on. */
export interface Machine {
  cpu: string;
  cores: number;
  memoryMiB: number;
  os: string;
  deno: string;
  v8: string;
  node: string;
  socketIo?: string;
  openFilesLimit?: string;
}

/** Reads the machine record. */
export async function machine(socketIo?: string): Promise<Machine> {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  const cpuinfo = read("/proc/cpuinfo");
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown";
  const mem = Number(read("/proc/meminfo").match(/^MemTotal:\s+(\d+)/m)?.[1] ?? 0);
  const node = await run("node", ["--version"], { timeoutMs: 10_000 });
  return {
    cpu: model.trim(),
    cores: navigator.hardwareConcurrency,
    memoryMiB: Math.round(mem / 1024),
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    node: node.code === 0 ? node.output.trim() : "not found",
    socketIo,
    openFilesLimit: read("/proc/self/limits").match(/^Max open files\s+(\d+)/m)?.[1],
  };
}

const _COLUMNS = ["switchboard", "raw", "socketio"];

function _format(value: number | undefined, unit: string): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  if (unit === "deliveries/s" || unit === "msgs") {
    return Math.round(value).toLocaleString("en-US");
  }
  if (unit === "s") return value.toFixed(2);
  if (unit === "µs") return value.toFixed(2);
  return value.toFixed(1);
}

function _ratio(r: number | undefined): string {
  return r === undefined || !Number.isFinite(r) ? "—" : `${r.toFixed(2)}x`;
}

/** Fills in the ratios from the values (Switchboard, or the cross-node subject, first). */
export function withRatios(row: Row, subjectKey = "switchboard"): Row {
  const sb = row.values[subjectKey];
  const raw = row.values.raw;
  const sio = row.values.socketio;
  if (sb !== undefined && raw) row.vsRaw = sb / raw;
  if (sb !== undefined && sio) row.vsSocketIo = sb / sio;
  return row;
}

/** The table as monospaced text. */
export function renderTable(rows: Row[], subjectLabel = "Switchboard"): string {
  const header = [
    "Scenario",
    "Metric",
    subjectLabel,
    "raw Deno",
    "Socket.IO",
    "SB/raw",
    "SB/SIO",
    "Goal",
    "Result",
  ];
  const lines = rows.map((row) => {
    const keys = Object.keys(row.values).length ? Object.keys(row.values) : _COLUMNS;
    const subjectKey = keys.find((k) => !["raw", "socketio"].includes(k)) ?? "switchboard";
    const cell = (key: string) => row.notes?.[key] ?? _format(row.values[key], row.unit);
    return [
      row.scenario,
      `${row.metric} (${row.unit})`,
      cell(subjectKey),
      cell("raw"),
      cell("socketio"),
      _ratio(row.vsRaw),
      _ratio(row.vsSocketIo),
      row.goal ?? "",
      row.pass === undefined ? (row.goal ? "n/a" : "") : row.pass ? "PASS" : "FAIL",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) =>
    "| " + cells.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join(" | ") +
    " |";
  const rule = "|" +
    widths.map((w, i) => (i >= 2 && i <= 6 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2)))
      .join("|") +
    "|";
  return [fmt(header), rule, ...lines.map(fmt)].join("\n");
}

/**
 * What a scenario adds to the report: its table rows (with their pass rules) and notes.
 *
 * @example
 * ```ts
 * const section: Section = { rows: [], notes: ["note: fan-out 500: …"] };
 * ```
 */
export interface Section {
  rows: Row[];
  /** Lines printed under the table (e.g. servers that closed subscribers). */
  notes?: string[];
}

/** A count for the table's titles. @example `count(10000) // "10,000"` */
export function count(x: number): string {
  return x.toLocaleString("en-US");
}

/**
 * The cells of a row that show text instead of a value: `error` for a subject that failed, and
 * `n/a` for Socket.IO when it is not installed (`sioOk` false).
 *
 * @example
 * ```ts
 * notesOf({ raw: { error: "did not start" }, switchboard: {} }, false); // { raw: "error", socketio: "n/a" }
 * ```
 */
export function notesOf(
  record: Record<string, { error?: string } | undefined> | undefined,
  sioOk: boolean,
): Record<string, string> {
  const notes: Record<string, string> = {};
  for (const [key, r] of Object.entries(record ?? {})) if (r?.error) notes[key] = "error";
  if (!sioOk) notes.socketio = "n/a";
  return notes;
}

/**
 * One line per subject whose server closed subscribers while `scenario` measured.
 *
 * @example
 * ```ts
 * closeNotes("latency", { switchboard: { closeReasons: { "slow consumer": 3 } } });
 * ```
 */
export function closeNotes(
  scenario: string,
  record?: Record<string, { closeReasons?: Record<string, number> }>,
): string[] {
  const lines: string[] = [];
  for (const [key, r] of Object.entries(record ?? {})) {
    for (const [reason, n] of Object.entries(r.closeReasons ?? {})) {
      lines.push(
        `note: ${scenario}: the ${key} server closed ${n} subscribers ("${reason}"); replaced before the next round`,
      );
    }
  }
  return lines;
}

/**
 * One metric of the three targets, read from their results (a target that failed or did not
 * run: undefined), in table order.
 *
 * @example
 * ```ts
 * const values = targetValues(results, (r) => r.deliveriesPerSec);
 * ```
 */
export function targetValues<T>(
  record: Record<string, T | undefined>,
  read: (result: T) => number | undefined,
): Record<string, number | undefined> {
  const value = (key: string) => {
    const result = record[key];
    return result === undefined ? undefined : read(result);
  };
  return { switchboard: value("switchboard"), raw: value("raw"), socketio: value("socketio") };
}
