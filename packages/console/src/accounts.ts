import { createHash, randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { z } from "zod";
import { ConsoleError } from "./errors.js";
import { decoyHash, hashPassword, verifyPassword } from "./passwords.js";
import { RoleSchema, type Role, type Viewer } from "./viewer.js";

export const AccountSchema = z.strictObject({
  id: z.uuid(),
  email: z.string(),
  name: z.string(),
  createdAt: z.string(),
  disabledAt: z.string().nullable(),
  hasPassword: z.boolean(),
  /** Linked to an OIDC identity (issuer + subject). */
  oidc: z.boolean(),
});
export type Account = z.infer<typeof AccountSchema>;

export const NewAccountSchema = z.strictObject({
  email: z.email().transform((e) => e.toLowerCase()),
  name: z.string().trim().min(1).max(200),
  /** Absent: the account signs in with OIDC only. */
  password: z.string().min(12, "must be at least 12 characters").max(1024).optional(),
  roles: z.record(z.string().min(1), RoleSchema).default({}),
});
export type NewAccount = z.input<typeof NewAccountSchema>;

export interface ApiToken {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface AccountStoreOptions {
  connectionString: string;
  /** The PostgreSQL schema the tables live in. */
  schema?: string;
  poolSize?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const TOKEN_PREFIX = "agc_";
/** API tokens are stored as their SHA-256 only: 32 random bytes need no slow hash, and a leaked table reveals none. */
const tokenHash = (token: string) => createHash("sha256").update(token).digest("hex");
const ignoreError = () => undefined;

interface AccountRow {
  id: string;
  email: string;
  name: string;
  password_hash: string | null;
  oidc_issuer: string | null;
  created_at: Date;
  disabled_at: Date | null;
}

const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  email: r.email,
  name: r.name,
  createdAt: r.created_at.toISOString(),
  disabledAt: r.disabled_at?.toISOString() ?? null,
  hasPassword: r.password_hash !== null,
  oidc: r.oidc_issuer !== null,
});

/**
 * The console's people (PostgreSQL): accounts, their role in each tenant, and API tokens. Every
 * statement is parameterised; the schema name, the one identifier interpolated, is checked first.
 */
export class AccountStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
  ) {}

  /** Connects and creates the tables when missing (idempotent, under an advisory lock so that racing starts do it once). */
  static async open(options: AccountStoreOptions): Promise<AccountStore> {
    const schema = options.schema ?? "auditgraph_console";
    if (!SCHEMA_NAME.test(schema)) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_BAD_REQUEST", `schema: must be a lower-case SQL identifier`);
    const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 5 });
    // An idle connection the server closed (a restart, an administrator's terminate) is dropped by
    // the pool, which connects again for the next query: without a listener it would crash the process.
    pool.on("error", () => undefined);
    const store = new AccountStore(pool, schema);
    try {
      await store.migrate();
      // Made now, so that the first login with an unknown email is not slower than the rest.
      await decoyHash();
    } catch (error) {
      await pool.end();
      throw error;
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const s = this.s;
    await this.transaction(async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext('auditgraph-console-schema'), hashtext($1))", [s]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.accounts (
        id uuid PRIMARY KEY,
        email text NOT NULL UNIQUE CHECK (email = lower(email)),
        name text NOT NULL,
        password_hash text,
        oidc_issuer text,
        oidc_subject text,
        created_at timestamptz NOT NULL DEFAULT now(),
        disabled_at timestamptz,
        UNIQUE (oidc_issuer, oidc_subject),
        CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL)))`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.roles (
        account_id uuid NOT NULL REFERENCES ${s}.accounts(id),
        tenant_id text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin')),
        PRIMARY KEY (account_id, tenant_id))`);
      await client.query(`CREATE INDEX IF NOT EXISTS roles_by_tenant ON ${s}.roles (tenant_id)`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${s}.api_tokens (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES ${s}.accounts(id),
        name text NOT NULL,
        token_hash text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz)`);
    });
  }

  /**
   * One transaction on one pooled connection. A connection the server closes while it is checked
   * out fails the query in flight (thrown) and must not crash the console; after a failure the
   * connection is closed rather than lent again.
   */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    client.on("error", ignoreError);
    let failed: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      failed = error as Error;
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.off("error", ignoreError);
      client.release(failed);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** A new account with its roles; an email already taken is a conflict. */
  async create(input: NewAccount): Promise<Account> {
    const a = NewAccountSchema.parse(input);
    const hash = a.password === undefined ? null : await hashPassword(a.password);
    return this.transaction(async (client) => {
      const { rows } = await client.query<AccountRow>(
        `INSERT INTO ${this.s}.accounts (id, email, name, password_hash) VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING RETURNING *`,
        [randomUUID(), a.email, a.name, hash],
      );
      if (!rows[0]) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", `an account with this email already exists`);
      for (const [tenantId, role] of Object.entries(a.roles))
        await client.query(`INSERT INTO ${this.s}.roles (account_id, tenant_id, role) VALUES ($1, $2, $3)`, [rows[0].id, tenantId, role]);
      return toAccount(rows[0]);
    });
  }

  async byId(id: string): Promise<Account | undefined> {
    if (!z.uuid().safeParse(id).success) return undefined;
    const { rows } = await this.pool.query<AccountRow>(`SELECT * FROM ${this.s}.accounts WHERE id = $1`, [id]);
    return rows[0] && toAccount(rows[0]);
  }

  async byEmail(email: string): Promise<Account | undefined> {
    const { rows } = await this.pool.query<AccountRow>(`SELECT * FROM ${this.s}.accounts WHERE email = $1`, [email.trim().toLowerCase()]);
    return rows[0] && toAccount(rows[0]);
  }

  /**
   * The enabled account whose password this is, else undefined. An unknown email, a disabled
   * account or one without a password costs the same scrypt as a wrong password.
   */
  async authenticate(email: string, password: string): Promise<Account | undefined> {
    const { rows } = await this.pool.query<AccountRow>(`SELECT * FROM ${this.s}.accounts WHERE email = $1`, [email.trim().toLowerCase()]);
    const row = rows[0];
    const usable = row !== undefined && row.password_hash !== null && row.disabled_at === null;
    const ok = await verifyPassword(password, usable ? row.password_hash! : await decoyHash());
    return usable && ok ? toAccount(row) : undefined;
  }

  async setPassword(accountId: string, password: string): Promise<void> {
    const { password: checked } = NewAccountSchema.pick({ password: true }).parse({ password });
    await this.pool.query(`UPDATE ${this.s}.accounts SET password_hash = $2 WHERE id = $1`, [accountId, await hashPassword(checked!)]);
  }

  /** Disabled accounts sign in no more; their sessions and tokens stop working at the next request. */
  async disable(accountId: string): Promise<void> {
    await this.pool.query(`UPDATE ${this.s}.accounts SET disabled_at = now() WHERE id = $1 AND disabled_at IS NULL`, [accountId]);
  }

  async rolesOf(accountId: string): Promise<Record<string, Role>> {
    if (!z.uuid().safeParse(accountId).success) return {};
    const { rows } = await this.pool.query<{ tenant_id: string; role: Role }>(`SELECT tenant_id, role FROM ${this.s}.roles WHERE account_id = $1`, [accountId]);
    return Object.fromEntries(rows.map((r) => [r.tenant_id, r.role]));
  }

  async setRole(accountId: string, tenantId: string, role: Role): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.s}.roles (account_id, tenant_id, role) VALUES ($1, $2, $3) ON CONFLICT (account_id, tenant_id) DO UPDATE SET role = EXCLUDED.role`,
      [accountId, tenantId, RoleSchema.parse(role)],
    );
  }

  async removeRole(accountId: string, tenantId: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.s}.roles WHERE account_id = $1 AND tenant_id = $2`, [accountId, tenantId]);
  }

  /** Accounts holding a role in any of `tenantIds`, with their roles in those tenants only (never the others'). */
  async listInTenants(tenantIds: string[]): Promise<Array<Account & { roles: Record<string, Role> }>> {
    if (tenantIds.length === 0) return [];
    const { rows } = await this.pool.query<AccountRow & { tenant_id: string; role: Role }>(
      `SELECT a.*, r.tenant_id, r.role FROM ${this.s}.accounts a JOIN ${this.s}.roles r ON r.account_id = a.id
       WHERE r.tenant_id = ANY($1::text[]) ORDER BY a.email, r.tenant_id`,
      [tenantIds],
    );
    const out = new Map<string, Account & { roles: Record<string, Role> }>();
    for (const row of rows) {
      const entry = out.get(row.id) ?? { ...toAccount(row), roles: {} };
      entry.roles[row.tenant_id] = row.role;
      out.set(row.id, entry);
    }
    return [...out.values()];
  }

  /** The viewer an enabled account is, with its roles read now (a changed role counts at the next request). */
  async viewerOf(accountId: string, via: Viewer["via"]): Promise<Viewer | undefined> {
    const account = await this.byId(accountId);
    if (!account || account.disabledAt !== null) return undefined;
    return { accountId: account.id, email: account.email, name: account.name, roles: await this.rolesOf(account.id), via };
  }

  /**
   * The account of an OIDC identity: by (issuer, subject); else the account with the same email
   * when the provider says it is verified (the identity is linked to it); else a new account with no roles.
   */
  async accountOfOidc(identity: {
    issuer: string;
    subject: string;
    email?: string | undefined;
    emailVerified: boolean;
    name?: string | undefined;
  }): Promise<Account> {
    const { issuer, subject } = identity;
    const found = await this.pool.query<AccountRow>(`SELECT * FROM ${this.s}.accounts WHERE oidc_issuer = $1 AND oidc_subject = $2`, [issuer, subject]);
    if (found.rows[0]) return toAccount(found.rows[0]);
    const email = identity.email?.trim().toLowerCase();
    if (email && identity.emailVerified) {
      const linked = await this.pool.query<AccountRow>(
        `UPDATE ${this.s}.accounts SET oidc_issuer = $2, oidc_subject = $3 WHERE email = $1 AND oidc_issuer IS NULL RETURNING *`,
        [email, issuer, subject],
      );
      if (linked.rows[0]) return toAccount(linked.rows[0]);
      if (await this.byEmail(email)) throw new ConsoleError("AUDITGRAPH_E_CONSOLE_CONFLICT", "this email belongs to an account linked to another identity");
    }
    if (!email || !identity.emailVerified)
      throw new ConsoleError("AUDITGRAPH_E_CONSOLE_FORBIDDEN", "the identity provider gave no verified email for this identity");
    const { rows } = await this.pool.query<AccountRow>(
      `INSERT INTO ${this.s}.accounts (id, email, name, oidc_issuer, oidc_subject) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
      [randomUUID(), email, (identity.name?.trim() || email).slice(0, 200), issuer, subject],
    );
    return toAccount(rows[0]!);
  }

  /** A new API token for an account: the token itself is returned here once and stored as its hash only. */
  async createToken(accountId: string, name: string): Promise<{ id: string; token: string }> {
    const id = randomUUID();
    const token = TOKEN_PREFIX + randomBytes(32).toString("base64url");
    await this.pool.query(`INSERT INTO ${this.s}.api_tokens (id, account_id, name, token_hash) VALUES ($1, $2, $3, $4)`, [
      id,
      accountId,
      z.string().trim().min(1).max(200).parse(name),
      tokenHash(token),
    ]);
    return { id, token };
  }

  /** The viewer an API token stands for; undefined for an unknown or revoked token or a disabled account. */
  async viewerOfToken(token: string): Promise<Viewer | undefined> {
    if (!token.startsWith(TOKEN_PREFIX)) return undefined;
    const { rows } = await this.pool.query<{ account_id: string }>(
      `UPDATE ${this.s}.api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL RETURNING account_id`,
      [tokenHash(token)],
    );
    return rows[0] ? this.viewerOf(rows[0].account_id, "token") : undefined;
  }

  async tokensOf(accountId: string): Promise<ApiToken[]> {
    const { rows } = await this.pool.query<{ id: string; name: string; created_at: Date; last_used_at: Date | null; revoked_at: Date | null }>(
      `SELECT id, name, created_at, last_used_at, revoked_at FROM ${this.s}.api_tokens WHERE account_id = $1 ORDER BY created_at`,
      [accountId],
    );
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      createdAt: r.created_at.toISOString(),
      lastUsedAt: r.last_used_at?.toISOString() ?? null,
      revokedAt: r.revoked_at?.toISOString() ?? null,
    }));
  }

  /** Revokes one of the account's tokens; false when it has no such live token. */
  async revokeToken(accountId: string, tokenId: string): Promise<boolean> {
    if (!z.uuid().safeParse(tokenId).success) return false;
    const { rowCount } = await this.pool.query(`UPDATE ${this.s}.api_tokens SET revoked_at = now() WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL`, [
      tokenId,
      accountId,
    ]);
    return rowCount === 1;
  }
}
