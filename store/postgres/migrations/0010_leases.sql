-- Work that one node at a time must do (the expiry sweep, one bot's
-- webhook deliveries) is named by a lease: a row held by one node until
-- it lapses. Rows rather than advisory locks, so a lease holds no
-- connection, survives a restart of the database, and works on
-- PostgreSQL-compatible databases without advisory locks. until_us is in
-- the database's clock (microseconds since the epoch).
CREATE TABLE leases (
	name     TEXT PRIMARY KEY,
	holder   TEXT NOT NULL,
	until_us BIGINT NOT NULL
);

-- Abuse limits shared by every node: one token bucket per key, kept as
-- its theoretical arrival time (GCRA; tat_us in the database's clock).
-- The key is a hash, so no address or account id is stored in the clear.
-- UNLOGGED: written on every send, so no WAL and no fsync; after a crash
-- PostgreSQL empties it, which forgets recent spending, on the side of
-- the user. It is not replicated to standbys, for the same reason.
CREATE UNLOGGED TABLE rate_buckets (
	key    BYTEA PRIMARY KEY,
	tat_us BIGINT NOT NULL
);
