-- The key ring when several nodes share this database: one row holding
-- the ring's state, already wrapped and authenticated under keys derived
-- from the master key (no raw key is ever stored). version makes every
-- change a compare-and-swap, so nodes never overwrite each other.
CREATE TABLE keyring (
	id      BIGINT PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL,
	data    BYTEA NOT NULL
);
