import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";
import isIBANModule from "validator/lib/isIBAN.js";
import isIPModule from "validator/lib/isIP.js";
import isLuhnNumberModule from "validator/lib/isLuhnNumber.js";

// validator's per-function modules are CommonJS marked __esModule: Node gives ESM the exports
// object (function under `default`), bundlers such as vitest's give the function itself.
const interop = <F>(module: { default: F }): F => (typeof module === "function" ? (module as F) : module.default);
const isIBAN = interop(isIBANModule);
const isIP = interop(isIPModule);
const isLuhnNumber = interop(isLuhnNumberModule);

/** Character counts taken in one pass over a string, so detectors that cannot match are skipped unrun. */
export interface ScanStats {
  length: number;
  digits: number;
  at: number;
  colons: number;
  dots: number;
  equals: number;
}

export function scan(text: string, stats: ScanStats): void {
  let digits = 0;
  let at = 0;
  let colons = 0;
  let dots = 0;
  let equals = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c === 64) at++;
    else if (c === 58) colons++;
    else if (c === 46) dots++;
    else if (c === 61) equals++;
  }
  stats.length = text.length;
  stats.digits = digits;
  stats.at = at;
  stats.colons = colons;
  stats.dots = dots;
  stats.equals = equals;
}

/** Where a detector reports its findings. */
export interface SpanSink {
  /** `normalized` is what the hash operator keys on, so `4111-1111-…` and `4111 1111 …` link. */
  add(start: number, end: number, normalized?: string): void;
  /** Whether an earlier detector already claimed part of `[start, end)`. */
  overlaps(start: number, end: number): boolean;
}

export interface Detector {
  readonly kind: string;
  /** Whether the mask operator keeps the last 4 letters/digits (values whose tail is commonly shown). */
  readonly keepLast4: boolean;
  /** A necessary condition for any match; false means `find` need not run. */
  mayMatch(stats: ScanStats): boolean;
  find(text: string, sink: SpanSink): void;
}

const onlyDigits = (text: string): string => text.replace(/\D+/g, "");
const onlyAlnumUpper = (text: string): string => text.replace(/[^A-Za-z0-9]+/g, "").toUpperCase();

/**
 * For candidates written in groups (`4111 1111 1111 1111`), a failed check may be one stray group
 * at the end (`... 1111 2024`): retry without trailing groups. Returns the accepted end, or -1.
 */
function acceptWithTrailingTrim(candidate: string, minLength: number, accept: (value: string) => boolean): number {
  let end = candidate.length;
  for (;;) {
    if (accept(candidate.slice(0, end))) return end;
    const cut = Math.max(candidate.lastIndexOf(" ", end - 1), candidate.lastIndexOf("-", end - 1));
    if (cut < minLength) return -1;
    end = cut;
  }
}

/** Resume after the first group when nothing in a candidate was accepted: a valid value may start there. */
function nextGroupStart(candidate: string, index: number): number {
  const space = candidate.indexOf(" ");
  const dash = candidate.indexOf("-");
  const first = space < 0 ? dash : dash < 0 ? space : Math.min(space, dash);
  return first < 0 ? index + candidate.length : index + first + 1;
}

// --- e-mail -----------------------------------------------------------------------------------

// No validator on top: isEmail refuses odd-but-real addresses, and a redactor should over-redact.
// `=`, `?`, `/` and a leading quote or dot are left out of the local part so `email=bob@x.io`
// keeps its key.
const LOCAL_PART = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.%+!#$&*^{|}~'-") LOCAL_PART[c.charCodeAt(0)] = 1;
const DOMAIN = /(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}/y;

class EmailDetector implements Detector {
  readonly kind = "email";
  readonly keepLast4 = false;
  private readonly domain = new RegExp(DOMAIN.source, DOMAIN.flags);
  mayMatch(stats: ScanStats): boolean {
    return stats.at > 0 && stats.dots > 0;
  }
  // Anchored on each `@` and read outwards: a regex would try (and fail) at every word start.
  find(text: string, sink: SpanSink): void {
    const domain = this.domain;
    for (let at = text.indexOf("@"); at >= 0; ) {
      let start = at;
      while (start > 0 && LOCAL_PART[text.charCodeAt(start - 1)] === 1) start--;
      while (start < at && (text[start] === "." || text[start] === "'")) start++;
      domain.lastIndex = at + 1;
      const m = start < at ? domain.exec(text) : null;
      if (m !== null) {
        const end = at + 1 + m[0].length;
        sink.add(start, end, text.slice(start, end).toLowerCase());
        at = text.indexOf("@", end);
      } else {
        at = text.indexOf("@", at + 1);
      }
    }
  }
}

// --- payment cards ------------------------------------------------------------------------------

// Separated and contiguous forms are separate alternatives so the digit partition is never ambiguous
// (no backtracking blow-up on long digit runs). First digit 2-6: ISO 7812 industries of payment
// cards, which also keeps millisecond timestamps (1…) from being read as cards.
const CARD = /(?<!\d)(?:[2-6]\d{3}(?:[ -]\d{1,6}){2,4}|[2-6]\d{12,18})(?!\d)/g;

const isCardNumber = (value: string): boolean => {
  const digits = onlyDigits(value);
  return digits.length >= 13 && digits.length <= 19 && isLuhnNumber(digits);
};

class CardDetector implements Detector {
  readonly kind = "card";
  readonly keepLast4 = true;
  private readonly re = new RegExp(CARD.source, CARD.flags);
  mayMatch(stats: ScanStats): boolean {
    return stats.digits >= 13;
  }
  find(text: string, sink: SpanSink): void {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const candidate = m[0];
      const end = acceptWithTrailingTrim(candidate, 13, isCardNumber);
      if (end > 0) {
        sink.add(m.index, m.index + end, onlyDigits(candidate.slice(0, end)));
        re.lastIndex = m.index + end;
      } else {
        re.lastIndex = nextGroupStart(candidate, m.index);
      }
    }
  }
}

// --- IBAN ---------------------------------------------------------------------------------------

const IBAN = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,4})?(?![A-Za-z0-9])/g;

// validator checks the country's BBAN format and the mod-97 check digits.
const isIbanValue = (value: string): boolean => isIBAN(value);

class IbanDetector implements Detector {
  readonly kind = "iban";
  readonly keepLast4 = true;
  private readonly re = new RegExp(IBAN.source, IBAN.flags);
  mayMatch(stats: ScanStats): boolean {
    return stats.length >= 12 && stats.digits >= 4;
  }
  find(text: string, sink: SpanSink): void {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const candidate = m[0];
      const end = acceptWithTrailingTrim(candidate, 12, isIbanValue);
      if (end > 0) {
        sink.add(m.index, m.index + end, onlyAlnumUpper(candidate.slice(0, end)));
        re.lastIndex = m.index + end;
      } else {
        re.lastIndex = nextGroupStart(candidate, m.index);
      }
    }
  }
}

// --- US SSN -------------------------------------------------------------------------------------

// Only the written forms (123-45-6789, 123 45 6789): a bare 9-digit number is too often something else.
const SSN = /(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])/g;

class SsnDetector implements Detector {
  readonly kind = "ssn";
  readonly keepLast4 = true;
  private readonly re = new RegExp(SSN.source, SSN.flags);
  mayMatch(stats: ScanStats): boolean {
    return stats.digits >= 9;
  }
  find(text: string, sink: SpanSink): void {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const [, area = "", , group = "", serial = ""] = m;
      // Never issued: area 000, 666, 900-999; group 00; serial 0000.
      if (area === "000" || area === "666" || area[0] === "9" || group === "00" || serial === "0000") continue;
      sink.add(m.index, m.index + m[0].length, `${area}${group}${serial}`);
    }
  }
}

// --- IP addresses -------------------------------------------------------------------------------

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
// The octet grammar is the validation; the look-arounds keep `1.2.3.4.5` and `999.1.1.1` out.
const IPV4 = new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d)`, "g");
// Candidates are runs of hex digits, colons and dots holding at least two colons; validator decides.
const IPV6 = /(?<![\w:.])(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:.]*[0-9A-Fa-f:](?![\w:])/g;

class IpDetector implements Detector {
  readonly kind = "ip";
  readonly keepLast4 = false;
  private readonly v4 = new RegExp(IPV4.source, IPV4.flags);
  private readonly v6 = new RegExp(IPV6.source, IPV6.flags);
  mayMatch(stats: ScanStats): boolean {
    return (stats.dots >= 3 && stats.digits >= 4) || stats.colons >= 2;
  }
  find(text: string, sink: SpanSink): void {
    // Re-checked here because mayMatch is an "or" of the two forms.
    if (text.includes(".")) {
      const re = this.v4;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) sink.add(m.index, m.index + m[0].length);
    }
    if (text.includes(":")) {
      const re = this.v6;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const candidate = m[0];
        // `::` alone is valid IPv6 but is mostly C++/Rust scope syntax.
        if (/[0-9A-Fa-f]/.test(candidate) && isIP(candidate, 6)) sink.add(m.index, m.index + candidate.length, candidate.toLowerCase());
      }
    }
  }
}

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

class SecretDetector implements Detector {
  readonly kind = "secret";
  readonly keepLast4 = false;
  private readonly re = new RegExp(SECRET.source, SECRET.flags);
  private readonly keyValue = new RegExp(KEY_VALUE.source, KEY_VALUE.flags);
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
  }
}

// --- phone numbers ------------------------------------------------------------------------------

// Phone-shaped candidates only: libphonenumber's parse costs ~15 µs and its own text scanner ~1 µs
// per character, too slow for every string on the callback path. It then validates each candidate
// against the numbering plan of its region.
const PHONE = new RegExp(
  String.raw`(?<![\w+.,/-])` +
    String.raw`(?:\+\d[\d ().-]{5,20}\d|\(\d{2,5}\)[ .-]?\d[\d .-]{3,14}\d|\d{2,5}[ .-]\d[\d .-]{2,14}\d|\d{10,11})` +
    String.raw`(?!\w|[.,:/-]\d)`,
  "g",
);
// Dates are phone-shaped (`2024-01-15 12` parses as a valid US number), so a candidate starting with one is skipped.
const DATE_START = /^(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4})(?!\d)/;
const PHONE_CACHE_LIMIT = 512;

class PhoneDetector implements Detector {
  readonly kind = "phone";
  readonly keepLast4 = true;
  private readonly re = new RegExp(PHONE.source, PHONE.flags);
  // Chat histories are re-sent on every turn; remembering verdicts saves the parse on repeats.
  private readonly verdicts = new Map<string, string | null>();
  private lastValid = "";
  private readonly isPhone = (candidate: string): boolean => {
    const verdict = this.check(candidate);
    if (verdict !== null) this.lastValid = verdict;
    return verdict !== null;
  };
  constructor(private readonly defaultCountry: CountryCode) {}

  mayMatch(stats: ScanStats): boolean {
    return stats.digits >= 7;
  }

  /** The number in E.164 when `candidate` is a valid phone number, else null. */
  private check(candidate: string): string | null {
    const digits = onlyDigits(candidate).length;
    if (digits < 7 || digits > 15) return null;
    const known = this.verdicts.get(candidate);
    if (known !== undefined) return known;
    const parsed = parsePhoneNumberFromString(candidate, this.defaultCountry);
    const verdict = parsed?.isValid() ? parsed.number : null;
    if (this.verdicts.size >= PHONE_CACHE_LIMIT) this.verdicts.clear();
    this.verdicts.set(candidate, verdict);
    return verdict;
  }

  find(text: string, sink: SpanSink): void {
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const candidate = m[0];
      const start = m.index;
      const end =
        DATE_START.test(candidate) || sink.overlaps(start, start + candidate.length)
          ? -1
          : acceptWithTrailingTrim(candidate, 7, this.isPhone);
      if (end > 0) {
        sink.add(start, start + end, this.lastValid);
        re.lastIndex = start + end;
      } else {
        // A stray leading number (`room 12 415-555-2671`): try again from the next group.
        re.lastIndex = nextGroupStart(candidate, start);
      }
    }
  }
}

export interface BuiltinOptions {
  phoneDefaultCountry: CountryCode;
}

/**
 * The built-in detectors in priority order: where findings overlap, the earlier detector's kind is
 * the one counted. Phone runs after the others so it can skip what they already claimed.
 */
export function builtinDetectors(options: BuiltinOptions): Record<string, Detector> {
  return {
    secret: new SecretDetector(),
    email: new EmailDetector(),
    iban: new IbanDetector(),
    card: new CardDetector(),
    ssn: new SsnDetector(),
    ip: new IpDetector(),
    phone: new PhoneDetector(options.phoneDefaultCountry),
  };
}
