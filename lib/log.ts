/**
 * A leveled logger writing one line per event to stderr/stdout.
 *
 * @example
 * ```ts
 * const log = createLogger("info");
 * log.info("listening", { port: 8000 });
 * ```
 * @module
 */

/** Log levels, least to most severe. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** See {@link createLogger}. */
export type Logger = Record<LogLevel, (message: string, fields?: Record<string, unknown>) => void>;

const _ORDER: LogLevel[] = ["debug", "info", "warn", "error"];

/** A logger that drops messages below `level`. */
export function createLogger(level: LogLevel): Logger {
  const min = _ORDER.indexOf(level);
  const make = (l: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (_ORDER.indexOf(l) < min) return;
    const line = `${new Date().toISOString()} ${l.toUpperCase()} ${message}` +
      (fields ? " " + JSON.stringify(fields) : "");
    if (l === "error" || l === "warn") console.error(line);
    else console.log(line);
  };
  return { debug: make("debug"), info: make("info"), warn: make("warn"), error: make("error") };
}

/** The logger used where none is injected: warnings and errors only. */
export const defaultLogger: Logger = createLogger("warn");

/** An error as one log field: its stack when it has one, else its text. */
export function describeError(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
