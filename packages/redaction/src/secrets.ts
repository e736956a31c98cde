import type { Detector, ScanStats, SpanSink } from "./detectors.js";

// --- secrets ------------------------------------------------------------------------------------

const BEARER_GROUP = 1;
// One alternation so a string is scanned once for all formats. Anchors are look-behinds rather than
// \b where `_`/`-` may precede a key (`token_sk_live_…`), and where \b would let `task-…` match `sk-`.
const SECRET = new RegExp(
  [
    // PEM private keys; a block cut off before its END line (truncated output) runs to the end of the text.
    String.raw`-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|[\s\S]*)`,
    // Bearer credentials: only the credential is replaced. It must hold a digit, so prose such as
    // "Bearer authentication" is left alone.
    String.raw`\b[Bb]earer[ \t]+((?=[A-Za-z0-9\-._~+/]*\d)[A-Za-z0-9\-._~+/]{8,}=*)`,
    // JWT: base64url JSON header and payload both start with `{"` = `eyJ`.
    String.raw`(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`,
    // Anthropic (sk-ant-…) and OpenAI (sk-…, sk-proj-…); the digit look-ahead spares hyphenated words.
    String.raw`(?<![A-Za-z0-9])sk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}`,
    // AWS access key ids.
    String.raw`(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}`,
    // GitHub classic and fine-grained tokens.
    String.raw`(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})`,
    // Slack.
    String.raw`(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9-]{10,}`,
    // Google API keys.
    String.raw`(?<![A-Za-z0-9])AIza[A-Za-z0-9_-]{35}`,
    // Stripe secret and restricted keys.
    String.raw`(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}`,
  ].join("|"),
  "g",
);

// `password=…`, `"api_key": "…"`, `Authorization: Bearer …` in free text: only the value is replaced.
// The key may carry any prefix (DB_PASSWORD, authToken) but no suffix, so `max_tokens=5` is left alone.
const KEY_VALUE = new RegExp(
  String.raw`(?:passw(?:or)?d|passphrase|pwd|secret|api[_-]?key|token|authorization|private[_-]?key|access[_-]?key)` +
    String.raw`["']?[ \t]*[:=][ \t]*` +
    String.raw`(?:"((?:[^"\\\r\n]|\\.)*)"|'((?:[^'\\\r\n]|\\.)*)'|((?:(?:Bearer|Basic|Token|Digest)[ \t]+)?[^\s"',;&<>{}()[\]]+))`,
  "gi",
);

// `SIGNING_KEY=…`, `"licenseKey": "…"`: any key name ending in `key`, but only a value that looks
// generated (see looksGenerated), so `sort_key=created_at` and `primary_key: id` stay readable.
const GENERIC_KEY_VALUE = /key["']?[ \t]*[:=][ \t]*(?:"([A-Za-z0-9+/=_.~-]{16,})"|'([A-Za-z0-9+/=_.~-]{16,})'|([A-Za-z0-9+/=_.~-]{16,}))/gi;

const KEY_WORDS = ["pass", "pwd", "secret", "key", "token", "authorization"];

/** A necessary condition for KEY_VALUE and GENERIC_KEY_VALUE: a `:` or `=` and one of their key words. */
function mayHoldKeyValue(text: string): boolean {
  if (!text.includes(":") && !text.includes("=")) return false;
  const lower = text.toLowerCase();
  return KEY_WORDS.some((word) => lower.includes(word));
}

const charClass = (c: number): number => (c >= 97 && c <= 122 ? 0 : c >= 65 && c <= 90 ? 1 : c >= 48 && c <= 57 ? 2 : 3);

/**
 * Whether a token-shaped value looks machine-generated (a key, a hash, an id) rather than written:
 * at least 16 letters and digits, both present, that switch between lower case, upper case and
 * digits often (words and dates do not) and use many different characters.
 */
export function looksGenerated(value: string): boolean {
  let alnum = 0;
  let switches = 0;
  let previous = -1;
  let letters = 0;
  let digits = 0;
  const seen = new Set<number>();
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const cls = charClass(c);
    if (cls === 3) continue;
    alnum++;
    seen.add(c);
    if (cls === 2) digits++;
    else letters++;
    if (previous !== -1 && cls !== previous) switches++;
    previous = cls;
  }
  return alnum >= 16 && letters > 0 && digits > 0 && seen.size >= 10 && switches / (alnum - 1) >= 0.2;
}

export class SecretDetector implements Detector {
  readonly kind = "secret";
  readonly keepLast4 = false;
  private readonly re = new RegExp(SECRET.source, SECRET.flags);
  private readonly keyValue = new RegExp(KEY_VALUE.source, KEY_VALUE.flags);
  private readonly genericKey = new RegExp(GENERIC_KEY_VALUE.source, GENERIC_KEY_VALUE.flags);
  mayMatch(stats: ScanStats): boolean {
    return stats.length >= 8;
  }
  find(text: string, sink: SpanSink): void {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const end = m.index + m[0].length;
      const credential = m[BEARER_GROUP];
      sink.add(credential === undefined ? m.index : end - credential.length, end);
    }
    // The key-value patterns cost more than the rest together on ordinary text; most text has
    // none of their key words, which a lower-cased `includes` finds out for a fraction of that.
    if (!mayHoldKeyValue(text)) return;
    const kv = this.keyValue;
    kv.lastIndex = 0;
    for (let m = kv.exec(text); m !== null; m = kv.exec(text)) {
      const quoted = m[1] ?? m[2];
      const value = quoted ?? m[3] ?? "";
      if (value.length === 0) continue;
      // A quoted value ends one character before the match (its closing quote).
      const end = m.index + m[0].length - (quoted === undefined ? 0 : 1);
      sink.add(end - value.length, end);
    }
    if (text.length < 20) return;
    const generic = this.genericKey;
    generic.lastIndex = 0;
    for (let m = generic.exec(text); m !== null; m = generic.exec(text)) {
      const quoted = m[1] ?? m[2];
      const value = quoted ?? m[3] ?? "";
      if (!looksGenerated(value)) continue;
      const end = m.index + m[0].length - (quoted === undefined ? 0 : 1);
      sink.add(end - value.length, end);
    }
  }
}
