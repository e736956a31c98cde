import { z } from "zod";

/** What the console is started with (the CLI builds it from AUDITGRAPH_CONSOLE_* variables). */
export const ConsoleOptionsSchema = z.strictObject({
  /** 0 takes a free port. */
  port: z.int().min(0).max(65_535),
  host: z.string().min(1).default("127.0.0.1"),
  /** The URL people open (behind a proxy: the proxy's https:// URL). Decides Secure cookies and the OIDC redirect. */
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Signs the session cookie. Never logged. */
  sessionSecret: z.string().min(32, "must be at least 32 characters"),
  sessionTtlSeconds: z
    .int()
    .positive()
    .default(8 * 3600),
  /** Trust X-Forwarded-* from a reverse proxy (the client's address in access events, https). */
  trustProxy: z.boolean().default(false),
  oidc: z
    .strictObject({
      issuer: z.url(),
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      /** Shown on the login button. */
      label: z.string().min(1).default("Single sign-on"),
    })
    .optional(),
  /** Tools the approval-integrity checks treat as high-impact (the worker's AUDITGRAPH_HIGH_IMPACT_TOOLS). */
  highImpactTools: z.array(z.string().min(1)).default([]),
  /** The checkpoint signers' public key (PEM file, AUDITGRAPH_PUBLIC_KEY): the ledger page offers it, and verifies signatures with it. */
  publicKeyPath: z.string().min(1).optional(),
});
export type ConsoleOptions = z.output<typeof ConsoleOptionsSchema>;
export type ConsoleOptionsInput = z.input<typeof ConsoleOptionsSchema>;
