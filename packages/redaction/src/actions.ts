import type { RedactionOperator } from "./config.js";
import { looksGenerated } from "./secrets.js";

// What a redaction does to a value once something matched it (a detector, a field rule, a
// credential key): the operator's replacement, and the small helpers the walk needs around it.

/** A detector's, field rule's or credential key's replacement: its kind (what is counted) and operator. */
export interface Action {
  readonly kind: string;
  readonly token: string;
  readonly operator: RedactionOperator;
  readonly keepLast4: boolean;
}

export const FULL_MASK = "********";
// Object keys whose string value is a credential whatever it looks like (db_password, x-api-key,
// authToken). Anchored at the end so `max_tokens`, `tokenizer` and `secretary` stay readable.
const SECRET_KEY = /(?:passw(?:or)?d|pass[_-]?phrase|pwd|secret|api[_-]?key|token|authorization|private[_-]?key|access[_-]?key|credentials?|cookie)$/i;
// Any other key ending in `key` (signingKey, LICENSE_KEY) holds a credential when its value looks generated.
const GENERIC_KEY = /key$/i;

/** Whether the value under an object key is a credential by its key (and, for a generic `...key`, its look). */
export function holdsCredential(key: string, value: unknown): boolean {
  // A number too: PINs and numeric passwords are credentials all the same.
  return (
    (typeof value === "string" && value.length > 0 && (SECRET_KEY.test(key) || (GENERIC_KEY.test(key) && looksGenerated(value)))) ||
    (typeof value === "number" && SECRET_KEY.test(key))
  );
}

export function actionFor(kind: string, operator: RedactionOperator, keepLast4: boolean): Action {
  return { kind, token: `[${kind.toUpperCase()}]`, operator, keepLast4 };
}

/** `4111-1111-1111-1111` -> `****-****-****-1111`: separators stay so the format still reads. */
export function maskKeepingLast4(text: string): string {
  let keep = 4;
  let out = "";
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text[i]!;
    const alnum = (c >= "0" && c <= "9") || (c >= "A" && c <= "Z") || (c >= "a" && c <= "z");
    out = (alnum && keep-- <= 0 ? "*" : c) + out;
  }
  return out;
}

export function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  // A JSON `__proto__` key is an own property; plain assignment would set the prototype instead.
  if (key === "__proto__") Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
