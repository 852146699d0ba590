/**
 * The small part of the DOM the page scripts use, typed here instead of through
 * `/// <reference lib="dom" />`: that directive would apply the DOM lib to everything checked
 * together with these files (`deno check lib/ tests/ …`), and its stream types clash with Deno's.
 * One element type with the properties the pages touch keeps the scripts simple.
 * @module
 */

/** An element (any tag) as the pages use it. */
export interface El {
  className: string;
  textContent: string | null;
  hidden: boolean;
  disabled: boolean;
  /** Inputs, selects and text areas. */
  value: string;
  /** `<time>` elements. */
  dateTime: string;
  readonly innerText: string;
  readonly dataset: Record<string, string | undefined>;
  readonly parentElement: El | null;
  readonly lastElementChild: El | null;
  readonly children: { readonly length: number };
  querySelector(selector: string): El | null;
  setAttribute(name: string, value: string): void;
  append(...nodes: (El | string)[]): void;
  prepend(...nodes: (El | string)[]): void;
  replaceChildren(...nodes: (El | string)[]): void;
  remove(): void;
  focus(): void;
  addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void;
}

/** The document as the pages use it. */
export interface Doc {
  readonly activeElement: El | null;
  getElementById(id: string): El | null;
  createElement(tag: string): El;
  addEventListener(type: string, listener: () => void): void;
}

/** The browser globals the pages use. */
export const browser = globalThis as unknown as {
  document: Doc;
  history: { replaceState(data: unknown, unused: string, url: string): void };
  location: { search: string };
};

/** The `token` query param the page was opened with (`deno task token`), if any. */
export function pageToken(): string | null {
  return new URLSearchParams(browser.location.search).get("token");
}

/** `document.getElementById`, failing loudly when the page lacks the element. */
export function byId(id: string): El {
  const el = browser.document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}
