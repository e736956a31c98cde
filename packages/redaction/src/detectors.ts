import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";
import isIBANModule from "validator/lib/isIBAN.js";
import isIPModule from "validator/lib/isIP.js";
import isLuhnNumberModule from "validator/lib/isLuhnNumber.js";
import { labelledAsBusiness } from "./business.js";
import { SecretDetector } from "./secrets.js";

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
      if (labelledAsBusiness(text, m.index)) continue;
      sink.add(m.index, m.index + m[0].length, `${area}${group}${serial}`);
    }
  }
}

// --- IP addresses -------------------------------------------------------------------------------

const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
// The octet grammar is the validation; the look-arounds keep `1.2.3.4.5` and `999.1.1.1` out.
// A `-beta`/`-rc1` tail is a version's.
const IPV4 = new RegExp(`(?<![\\w.])(?:${OCTET}\\.){3}${OCTET}(?!\\w|\\.\\d|-[A-Za-z])`, "g");
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
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (!labelledAsBusiness(text, m.index)) sink.add(m.index, m.index + m[0].length);
      }
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

// --- phone numbers ------------------------------------------------------------------------------

// Phone-shaped candidates only: libphonenumber's parse costs ~15 µs and its own text scanner ~1 µs
// per character, too slow for every string on the callback path. It then validates each candidate
// against the numbering plan of its region.
const PHONE = new RegExp(
  String.raw`(?<![\w+.,/-])` +
    String.raw`(?:\+\d[\d ().-]{5,20}\d|\(\d{2,5}\)[ .-]?\d[\d .-]{3,14}\d|1[ .-]\d{3}[ .-]\d{3}[ .-]\d{4}|\d{2,5}[ .-]\d[\d .-]{2,14}\d|\d{10,11})` +
    String.raw`(?!\w|[.,:/-]\d)`,
  "g",
);
// Dates are phone-shaped (`2024-01-15 12` parses as a valid US number), so a candidate starting with one is skipped.
const DATE_START = /^(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{4})(?!\d)/;
const PHONE_CACHE_LIMIT = 512;
// A grouped number is checked against its plan's groups (see groupedLikePlan); an ungrouped run of
// digits cannot be, so there the label in front decides (`Order 2125550147` is an order number).
// Not for grouped ones: "call to order: (415) 555-2671" must still be redacted.
const UNGROUPED = /^\d+$/;

/** Digit counts after which a separator stands between two digits: `(415) 555-2671` -> [3, 6]. */
function groupEnds(text: string): number[] {
  const ends: number[] = [];
  let digits = 0;
  let separated = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (separated && digits > 0) ends.push(digits);
      separated = false;
      digits++;
    } else {
      separated = true;
    }
  }
  return ends;
}

/**
 * Whether a national number's groups fit its numbering plan's: people group a phone number the
 * way it is dialled (`415 555 2671`, or coarser: `415 5552671`), while `2026-000123` (an invoice)
 * or `400-1234-567` (a SKU) splits digits where the plan has no break. `formatted` is the
 * number as libphonenumber formats it nationally; a leading trunk prefix (`1-…`) may stand apart.
 */
function groupedLikePlan(candidate: string, formatted: string): boolean {
  const digits = onlyDigits(candidate);
  const planDigits = onlyDigits(formatted);
  if (!digits.endsWith(planDigits)) return true; // cannot line them up: no opinion
  const offset = digits.length - planDigits.length;
  const plan = new Set(groupEnds(formatted));
  return groupEnds(candidate).every((end) => end === offset || plan.has(end - offset));
}

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
    // A number written with `+` is one; a national one must also be grouped the way it is dialled.
    const valid = parsed?.isValid() === true && (candidate.startsWith("+") || groupedLikePlan(candidate, parsed.formatNational()));
    const verdict = valid ? parsed.number : null;
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
        DATE_START.test(candidate) || sink.overlaps(start, start + candidate.length) || (UNGROUPED.test(candidate) && labelledAsBusiness(text, start))
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
