import { Cluster, Redis, type RedisOptions } from "ioredis";

// Here, not in @auditgraph/core, so that core (schema, hashing, validation) does not pull ioredis
// into every process: this is the lowest package both Redis users (the agent's transport in
// @auditgraph/langchain and @auditgraph/worker) already depend on, and it needs Redis itself
// for its holds.

/**
 * How to reach Redis: ioredis options for one node, plus, for a Redis Cluster, its seed nodes
 * (the options then apply to every node: credentials, TLS). One value for every component, so
 * that moving to a cluster is configuration only.
 */
export type RedisConnection = Omit<RedisOptions, "retryStrategy"> & {
  clusterNodes?: { host: string; port: number }[] | undefined;
  // Not null, as ioredis would allow: BullMQ's options type (which these also are) does not.
  // biome-ignore lint/suspicious/noConfusingVoidType: the same signature as BullMQ's, which returns void.
  retryStrategy?: (times: number) => number | void | null;
};

/** A client of its own (the caller closes it): a `Cluster` when the connection names cluster nodes. */
export function redisClient(connection: RedisConnection, overrides: RedisOptions = {}): Redis | Cluster {
  const { clusterNodes, ...options } = { ...connection, ...overrides };
  if (!clusterNodes?.length) return new Redis(options);
  // Cluster-wide settings go to the Cluster; the rest (auth, TLS, retries) to each node's client.
  const { enableOfflineQueue, lazyConnect, ...node } = options;
  return new Cluster(clusterNodes, {
    redisOptions: node,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
  });
}

/**
 * What BullMQ's `connection` takes: the options themselves for one node (BullMQ makes and
 * closes its clients), or for a cluster a `Cluster` of the caller's, which BullMQ shares and
 * does not close: `release` does.
 */
export function bullConnection(
  connection: RedisConnection,
  overrides: RedisOptions = {},
): { connection: RedisOptions | Cluster; release: () => Promise<void> } {
  if (!connection.clusterNodes?.length) {
    const { clusterNodes: _, ...options } = connection;
    return { connection: { ...options, ...overrides }, release: async () => undefined };
  }
  const cluster = redisClient(connection, overrides) as Cluster;
  return {
    connection: cluster,
    release: () =>
      cluster.quit().then(
        () => undefined,
        () => cluster.disconnect(),
      ),
  };
}

/** How to reach Redis, from AUDITGRAPH_REDIS_URL (credentials, db and TLS included) and the cluster's seed nodes. */
export function redisConnectionOf(redisUrl: string, clusterNodes?: { host: string; port: number }[]): RedisConnection {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === "rediss:" ? { tls: {} } : {}),
    ...(clusterNodes?.length ? { clusterNodes } : {}),
  };
}

/**
 * Where a connection points, for a log line: host:port (or the cluster's seed nodes), the db
 * and whether TLS is on. Never a username, password or URL.
 */
export function describeRedis(connection: RedisConnection): { nodes: string[]; cluster: boolean; tls: boolean; db?: number } {
  const cluster = Boolean(connection.clusterNodes?.length);
  const nodes = cluster
    ? connection.clusterNodes!.map((n) => `${n.host}:${n.port}`)
    : [connection.path ?? `${connection.host ?? "127.0.0.1"}:${connection.port ?? 6379}`];
  return { nodes, cluster, tls: Boolean(connection.tls), ...(connection.db ? { db: connection.db } : {}) };
}

/** What `readEpoch` needs of a Redis client: BullMQ's own (`queue.getBackend().client`) has it. */
export interface ScriptClient {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  runCommand(name: string, args: unknown[]): Promise<unknown>;
}

const defined = new WeakSet<ScriptClient>();

/**
 * The epoch at `key` (see `epochKey` of @auditgraph/core), set to `fresh` first if there is none:
 * one atomic step, so racing readers agree.
 */
export async function readEpoch(client: ScriptClient, key: string, fresh: string): Promise<string> {
  if (!defined.has(client)) {
    client.defineCommand("auditgraphEpoch", { numberOfKeys: 1, lua: "redis.call('SET', KEYS[1], ARGV[1], 'NX') return redis.call('GET', KEYS[1])" });
    defined.add(client);
  }
  return String(await client.runCommand("auditgraphEpoch", [key, fresh]));
}
