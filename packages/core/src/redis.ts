import { Cluster, Redis, type RedisOptions } from "ioredis";

/**
 * How to reach Redis: ioredis options for one node, plus, for a Redis Cluster, its seed nodes
 * (the options then apply to every node: credentials, TLS). One value for every component, so
 * that moving to a cluster is configuration only.
 */
export type RedisConnection = Omit<RedisOptions, "retryStrategy"> & {
  clusterNodes?: { host: string; port: number }[] | undefined;
  // Not null, as ioredis would allow: BullMQ's options type (which these also are) does not.
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
export function bullConnection(connection: RedisConnection, overrides: RedisOptions = {}): { connection: RedisOptions | Cluster; release: () => Promise<void> } {
  if (!connection.clusterNodes?.length) {
    const { clusterNodes: _, ...options } = connection;
    return { connection: { ...options, ...overrides }, release: async () => undefined };
  }
  const cluster = redisClient(connection, overrides) as Cluster;
  return { connection: cluster, release: () => cluster.quit().then(() => undefined, () => cluster.disconnect()) };
}
