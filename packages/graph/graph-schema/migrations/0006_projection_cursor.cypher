// The projection's place in each ledger stream: the last projected position and its record's hash.
// Unique, so that two workers projecting a new stream at once make one cursor, and lock the same one.
CREATE CONSTRAINT projection_cursor_stream IF NOT EXISTS FOR (n:ProjectionCursor) REQUIRE n.streamId IS UNIQUE;
