import type { FastifyRequest } from "fastify";
import type { Cluster, Redis } from "ioredis";
import type { Logger } from "pino";
import type { Ledger } from "@auditgraph/ledger";
import type { Graph } from "@auditgraph/graph";
import type { AccessAction, AccessSubject, LedgerRecord } from "@auditgraph/core";
import type { AccountStore } from "./accounts.js";
import type { ConsoleOptions } from "./options.js";
import type { Viewer } from "./viewer.js";

/** What the console's routes share: the stores it reads and writes, and how it records its readers. */
export interface ConsoleContext {
  options: ConsoleOptions;
  ledger: Ledger;
  graph: Graph;
  /** Sessions, the inbox's live updates, and held calls' decisions. */
  redis: Redis | Cluster;
  accounts: AccountStore;
  log: Logger;
  /**
   * A trace's records in the tenant's own stream only (ids are unique within a tenant), sealed
   * records opened with the key store; those whose subject was erased (or with no key store) stay
   * sealed and read as erased.
   */
  readTrace(tenantId: string, traceId: string): Promise<LedgerRecord[]>;
  /**
   * Appends an access event (who, what, when, from where) to the tenant's ledger stream. Routes
   * await it before they send the content: a read that could not be recorded is not served.
   */
  recordAccess(request: FastifyRequest, viewer: Viewer, access: { tenantId: string; action: AccessAction; subject: AccessSubject }): Promise<void>;
}
