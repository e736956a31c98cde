// Each projection cursor names the ledger it was projected from (ledgerId, the ledger's id), so
// that two ledgers sharing this database never project over each other's tenant graph: a worker
// whose ledger is not the cursor's leaves the stream alone and says so. Still one cursor per
// stream (0006's constraint): its lock is what serialises every writer of the tenant's graph.
// Cursors made before ledger ids have no ledgerId and stay usable: the first ledger whose hash
// chain they are on claims them at its next projection; one whose chain they are not on is refused
// (`auditgraph rebuild-graph --tenant T --replace` hands the tenant over). Nothing to rewrite here.
CREATE INDEX projection_cursor_ledger IF NOT EXISTS FOR (n:ProjectionCursor) ON (n.ledgerId);
