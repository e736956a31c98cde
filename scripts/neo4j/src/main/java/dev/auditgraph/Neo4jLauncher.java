package dev.auditgraph;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.SettingValueParsers;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.HttpConnector;
import org.neo4j.configuration.connectors.HttpsConnector;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.QueryExecutionException;
import org.neo4j.io.ByteUnit;

/**
 * Local development Neo4j: Community edition, embedded, Bolt only, auth enabled.
 * Started by scripts/neo4j-start.sh; stopped with SIGTERM (scripts/neo4j-stop.sh).
 *
 * <p>Env: NEO4J_BOLT_ADDRESS (127.0.0.1:7687), NEO4J_DATA_DIR (.services/neo4j/data),
 * NEO4J_PASSWORD (auditgraph-dev) for user neo4j. Server logs go to the data dir's parent /logs.
 */
public final class Neo4jLauncher {
    public static void main(String[] args) {
        String bolt = env("NEO4J_BOLT_ADDRESS", "127.0.0.1:7687");
        Path dataDir = Path.of(env("NEO4J_DATA_DIR", ".services/neo4j/data")).toAbsolutePath();
        String password = env("NEO4J_PASSWORD", "auditgraph-dev");
        if (password.length() < 8) {
            System.err.println("neo4j launcher: NEO4J_PASSWORD must have at least 8 characters");
            System.exit(2);
        }

        DatabaseManagementService dbms;
        try {
            dbms = new DatabaseManagementServiceBuilder(dataDir.getParent())
                    .setConfig(GraphDatabaseSettings.data_directory, dataDir)
                    .setConfig(GraphDatabaseSettings.auth_enabled, true)
                    .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(256))
                    .setConfig(GraphDatabaseSettings.udc_enabled, false)
                    .setConfig(BoltConnector.enabled, true)
                    .setConfig(BoltConnector.listen_address, SettingValueParsers.SOCKET_ADDRESS.parse(bolt))
                    .setConfig(HttpConnector.enabled, false)
                    .setConfig(HttpsConnector.enabled, false)
                    .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, Duration.ofSeconds(1))
                    .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, Duration.ofSeconds(1))
                    .build();
        } catch (RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(dbms::shutdown, "neo4j-shutdown"));

        try {
            setPassword(dbms, password);
        } catch (RuntimeException e) {
            e.printStackTrace();
            System.exit(1); // the shutdown hook stops the DBMS
        }
        System.out.println("neo4j ready bolt://" + bolt);
        System.out.flush();
        try {
            Thread.currentThread().join(); // run until SIGTERM/SIGINT
        } catch (InterruptedException ignored) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Embedded transactions bypass auth, so the system database can set the password directly.
     * Done on every start: a fresh store's neo4j/neo4j (change required) becomes NEO4J_PASSWORD,
     * an existing store follows a changed NEO4J_PASSWORD, and an unchanged one is left as is.
     */
    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        } catch (QueryExecutionException e) {
            String msg = String.valueOf(e.getMessage());
            if (!msg.contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    private static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? fallback : v;
    }
}
