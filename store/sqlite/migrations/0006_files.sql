-- Uploaded files. The bytes live in a blob store, encrypted under the
-- file's own key; key is that key sealed like a message body, and
-- sealed_until says when the key it is sealed under is destroyed (0: the
-- master key).
CREATE TABLE files (
	id           TEXT PRIMARY KEY,
	owner_id     INTEGER NOT NULL,
	name         TEXT NOT NULL,
	size         INTEGER NOT NULL,
	mime         TEXT NOT NULL,
	kind         TEXT NOT NULL,
	sha256       TEXT NOT NULL,
	width        INTEGER NOT NULL DEFAULT 0,
	height       INTEGER NOT NULL DEFAULT 0,
	duration     INTEGER NOT NULL DEFAULT 0,
	thumb        INTEGER NOT NULL DEFAULT 0,
	created_at   INTEGER NOT NULL,
	key          BLOB NOT NULL,
	sealed_until INTEGER NOT NULL DEFAULT 0,
	-- set when a message first carries the file, in the same transaction
	attached     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX files_owner ON files (owner_id, sha256);
CREATE INDEX files_sealed ON files (sealed_until) WHERE sealed_until != 0;

-- The file a message carries ('' for none); its text is then the caption.
ALTER TABLE messages ADD COLUMN file_id TEXT NOT NULL DEFAULT '';
CREATE INDEX messages_file ON messages (file_id) WHERE file_id != '';
