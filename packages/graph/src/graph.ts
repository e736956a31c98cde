import neo4j, { type Driver } from "neo4j-driver";
import { parseWith, type PlainRecord } from "@auditgraph/core";
import { GraphConfigSchema, type GraphConfig } from "./config.js";
import { migrate, type MigrateOptions, type MigrationResult } from "./migrate.js";
import { projectRecords } from "./project.js";
import { readLineage, type Lineage, type LineageOptions } from "./lineage.js";
import { projectRangeTx, readCursorsTx, type ProjectionCursor, type ProjectionRange, type RangeOutcome } from "./cursor.js";
import { countProjection, deleteProjection, type ProjectionScope } from "./maintenance.js";

/** The Neo4j projection of the ledger, and the questions it answers. */
export class Graph {
  readonly driver: Driver;
  readonly database: string;

  constructor(config: GraphConfig) {
    const { uri, user, password, database, maxRetryTimeMs } = parseWith(GraphConfigSchema, config, "graph config");
    this.database = database;
    // Integers come back as JS numbers: counts and positions stay far below 2^53.
    this.driver = neo4j.driver(uri, neo4j.auth.basic(user, password), {
      disableLosslessIntegers: true,
      maxTransactionRetryTime: maxRetryTimeMs,
    });
  }

  migrate(options: MigrateOptions = {}): Promise<MigrationResult> {
    return migrate(this.driver, this.database, options);
  }

  /** Records with their events in the clear (in hand, or opened): the graph holds plaintext, the ledger may not. */
  async project(records: PlainRecord[]): Promise<void> {
    if (records.length === 0) return;
    const session = this.driver.session({ database: this.database, defaultAccessMode: "WRITE" });
    try {
      await session.executeWrite((tx) => projectRecords(tx, records));
    } finally {
      await session.close();
    }
  }

  /**
   * Projects a contiguous range of one ledger stream and moves the stream's cursor in the same
   * write transaction, so the cursor never runs ahead of the graph (see `projectRangeTx`).
   */
  async projectRange(range: ProjectionRange, records: PlainRecord[]): Promise<RangeOutcome> {
    const session = this.driver.session({ database: this.database, defaultAccessMode: "WRITE" });
    try {
      return await session.executeWrite((tx) => projectRangeTx(tx, range, records));
    } finally {
      await session.close();
    }
  }

  /** The projection cursors (last projected ledger position of each stream), or the one of `streamId`. */
  async cursors(streamId?: string): Promise<ProjectionCursor[]> {
    const session = this.driver.session({ database: this.database, defaultAccessMode: "READ" });
    try {
      return await session.executeRead((tx) => readCursorsTx(tx, streamId ?? null));
    } finally {
      await session.close();
    }
  }

  /** How many nodes the projection (or one tenant's part of it) holds; migrations are not counted. */
  countProjection(scope: ProjectionScope = {}): Promise<number> {
    return countProjection(this.driver, this.database, scope);
  }

  /** Deletes the projection (or one tenant's part of it) in batches; the schema and migrations stay. */
  deleteProjection(scope: ProjectionScope = {}, options: Parameters<typeof deleteProjection>[3] = {}): Promise<number> {
    return deleteProjection(this.driver, this.database, scope, options);
  }

  lineage(id: string, options: LineageOptions = {}): Promise<Lineage | null> {
    return readLineage(this.driver, this.database, id, options);
  }

  /** A read-only query (investigations and tests): runs in a read transaction, parameters bound. */
  async read(cypher: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>[]> {
    const session = this.driver.session({ database: this.database, defaultAccessMode: "READ" });
    try {
      const result = await session.executeRead((tx) => tx.run(cypher, params));
      return result.records.map((r) => r.toObject());
    } finally {
      await session.close();
    }
  }

  /** An integer parameter as Cypher's INTEGER (a JS number would be sent as a FLOAT). */
  int(value: number) {
    return neo4j.int(value);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
