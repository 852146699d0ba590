/**
 * Turns zod errors into messages that name the field, for replies and HTTP errors.
 *
 * @example
 * ```ts
 * const r = z.object({ state: z.string() }).safeParse({});
 * if (!r.success) fieldErrors(r.error); // [{ field: "state", message: "Invalid input: …" }]
 * ```
 * @module
 */
import type { z } from "zod";

/** One validation failure: the dotted path of the field and what was wrong with it. */
export interface FieldError {
  field: string;
  message: string;
}

/** Lists the failures of a zod error, each with its field path (`[0].topic`, `meta.name`). */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => ({ field: _path(issue.path), message: issue.message }));
}

/** One line naming every failing field, e.g. `topic: Invalid input; event: Required`. */
export function describeErrors(error: z.ZodError): string {
  return fieldErrors(error).map((e) => `${e.field || "(root)"}: ${e.message}`).join("; ");
}

function _path(path: PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}
