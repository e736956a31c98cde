import { z } from "zod";
import { isSupportedCountry } from "libphonenumber-js/max";
import { compileFieldPath } from "./paths.js";

/** The built-in detectors; each is also the key its findings are counted under in `redactions`. */
export const BUILTIN_DETECTORS = ["email", "phone", "card", "iban", "ssn", "ip", "secret"] as const;
export type BuiltinDetector = (typeof BUILTIN_DETECTORS)[number];
/** The detectors of personal data: off unless `pii: true` or their settings are given under `detectors`. */
export const PII_DETECTORS = ["email", "phone", "card", "iban", "ssn", "ip"] as const satisfies readonly BuiltinDetector[];

/**
 * Whether a built-in detector runs: `secret` unless switched off; a PII detector when `pii` is
 * on or its settings are given (naming one is asking for it), unless they say `enabled: false`.
 */
export function detectorEnabled(kind: BuiltinDetector, config: { pii: boolean; detectors: Partial<Record<BuiltinDetector, { enabled: boolean }>> }): boolean {
  const settings = config.detectors[kind];
  if (settings !== undefined) return settings.enabled;
  return kind === "secret" || config.pii;
}

/**
 * What replaces a finding.
 * - `token`: a typed token such as `[EMAIL]`.
 * - `mask`: `*` for every letter and digit but the last 4 for cards, IBANs, phone numbers and SSNs
 *   (separators kept); a fixed `********` for everything else, so the length does not show.
 * - `hash`: `[EMAIL:hmac:<16 hex>]`, HMAC-SHA-256 under `hashKey`: equal values link across events.
 * - `drop`: a match inside text becomes the empty string; a field matched by a field rule is
 *   deleted (or, where the event schema needs the field, emptied: see `Redactor`).
 */
export const RedactionOperatorSchema = z.enum(["token", "mask", "hash", "drop"]);
export type RedactionOperator = z.infer<typeof RedactionOperatorSchema>;

const kindName = z.string().regex(/^[a-z][a-z0-9_]*$/, "must be lower-case letters, digits and _, starting with a letter");

const DetectorSettingsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Defaults to the config's `defaultOperator`. */
  operator: RedactionOperatorSchema.optional(),
});

const PhoneSettingsSchema = DetectorSettingsSchema.extend({
  /** Region used to read national numbers (`(415) 555-2671`); numbers written with `+` are read in any region. */
  defaultCountry: z
    .string()
    .refine((code) => isSupportedCountry(code), "must be an ISO 3166-1 alpha-2 region code libphonenumber knows, e.g. US")
    .default("US"),
});

/** A span of a string to redact, as half-open UTF-16 offsets `[start, end)`. */
export interface TextSpan {
  start: number;
  end: number;
}
export type DetectorFunction = (text: string) => ReadonlyArray<TextSpan>;

export const CustomDetectorSchema = z.strictObject({
  /** Counted under this name; its token is the upper-cased name (`employee_id` -> `[EMPLOYEE_ID]`). */
  name: kindName,
  pattern: z.union(
    [
      z.instanceof(RegExp).refine((re) => re.global && !re.sticky, "a RegExp pattern needs the g flag (and not y)"),
      z.custom<DetectorFunction>((value) => typeof value === "function"),
    ],
    { error: "must be a RegExp with the g flag or a function (text) => Array<{ start, end }>" },
  ),
  operator: RedactionOperatorSchema.optional(),
});

export const FieldRuleSchema = z.strictObject({
  /**
   * A dotted path from the event root (`payload.inputs.*.ssn`, `model.params.apiKey`): `*` is one
   * key or array index (and may be part of a key: `*_ssn`), `**` any number of them. A path
   * without a dot is a key name anywhere (`ssn` = `**.ssn`).
   */
  path: z.string().superRefine((path, ctx) => {
    const problem = compileFieldPath(path).problem;
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }),
  operator: RedactionOperatorSchema,
  /** Counted (and tokenised) under this name. */
  kind: kindName.default("field"),
});

export const RedactionConfigSchema = z
  .strictObject({
    /**
     * Also look for personal data: e-mail addresses, phone numbers, payment cards, IBANs, US SSNs
     * and IP addresses. Off by default: secrets are always looked for, PII on request.
     */
    pii: z.boolean().default(false),
    defaultOperator: RedactionOperatorSchema.default("token"),
    /** HMAC key for the `hash` operator; keep it secret and stable, or equal values stop linking. */
    hashKey: z.string().min(16, "must be at least 16 characters").optional(),
    detectors: z
      .strictObject({
        email: DetectorSettingsSchema.optional(),
        phone: PhoneSettingsSchema.optional(),
        card: DetectorSettingsSchema.optional(),
        iban: DetectorSettingsSchema.optional(),
        ssn: DetectorSettingsSchema.optional(),
        ip: DetectorSettingsSchema.optional(),
        /** API keys, bearer tokens, PEM private keys, JWTs, `password=` in text and password-like object keys. */
        secret: DetectorSettingsSchema.optional(),
      })
      .default({}),
    custom: z.array(CustomDetectorSchema).default([]),
    fields: z.array(FieldRuleSchema).default([]),
  })
  .superRefine((config, ctx) => {
    const needsKey = (path: PropertyKey[]) => {
      if (config.hashKey === undefined) {
        ctx.addIssue({ code: "custom", path, message: "the hash operator needs hashKey (the HMAC key) to be set" });
      }
    };
    let defaultUsed = false;
    for (const kind of BUILTIN_DETECTORS) {
      const settings = config.detectors[kind];
      if (!detectorEnabled(kind, config)) continue;
      if (settings?.operator === "hash") needsKey(["detectors", kind, "operator"]);
      else if (settings?.operator === undefined) defaultUsed = true;
    }
    const names = new Set<string>();
    config.custom.forEach((detector, i) => {
      if ((BUILTIN_DETECTORS as readonly string[]).includes(detector.name)) {
        ctx.addIssue({ code: "custom", path: ["custom", i, "name"], message: `"${detector.name}" is a built-in detector` });
      } else if (names.has(detector.name)) {
        ctx.addIssue({ code: "custom", path: ["custom", i, "name"], message: `"${detector.name}" is already used` });
      }
      names.add(detector.name);
      if (detector.operator === "hash") needsKey(["custom", i, "operator"]);
      else if (detector.operator === undefined) defaultUsed = true;
    });
    config.fields.forEach((rule, i) => {
      if (rule.operator === "hash") needsKey(["fields", i, "operator"]);
    });
    if (defaultUsed && config.defaultOperator === "hash") needsKey(["defaultOperator"]);
  });

/** What callers write (defaults optional). */
export type RedactionConfig = z.input<typeof RedactionConfigSchema>;
/** The config after defaults. */
export type ResolvedRedactionConfig = z.output<typeof RedactionConfigSchema>;
export type CustomDetector = z.input<typeof CustomDetectorSchema>;
export type FieldRule = z.input<typeof FieldRuleSchema>;
