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

/**
 * True when `value` nests arrays and objects deeper than `max` levels (a payload object is
 * level 1). Iterative, so a hostile payload cannot overflow the stack here; encoding one that
 * deep later would (`JSON.stringify` recurses), which is why publishers are capped.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
