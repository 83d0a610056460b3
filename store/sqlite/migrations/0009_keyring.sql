-- The shared key ring's table, as in the PostgreSQL store (whose schema
-- this mirrors). A node on SQLite is alone and keeps its ring in the file
-- DATA/keyring, where destroyed keys are overwritten in place; this table
-- stays empty.
CREATE TABLE keyring (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL,
	data    BLOB NOT NULL
);
