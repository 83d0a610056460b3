-- Broadcast channels (and groups large enough to fan out on read).

-- One namespace for @names: users and public channels.
CREATE TABLE names (
	name    TEXT PRIMARY KEY,
	user_id INTEGER,
	chat_id INTEGER
) WITHOUT ROWID;
INSERT INTO names (name, user_id) SELECT username, id FROM users;

ALTER TABLE chats ADD COLUMN username    TEXT NOT NULL DEFAULT '';
ALTER TABLE chats ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE chats ADD COLUMN signatures  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN broadcast   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN pts         INTEGER NOT NULL DEFAULT 0;

ALTER TABLE members ADD COLUMN muted    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN view_seq INTEGER NOT NULL DEFAULT 0;

-- Distinct viewers per post, kept as a counter: a member's view position
-- only moves forward, so each member adds one to each post once.
ALTER TABLE messages ADD COLUMN views INTEGER NOT NULL DEFAULT 0;

-- A broadcast chat's own log: one row per post, edit or delete, however
-- many members the chat has.
CREATE TABLE chat_updates (
	chat_id  INTEGER NOT NULL,
	pts      INTEGER NOT NULL,
	kind     INTEGER NOT NULL,
	seq      INTEGER NOT NULL DEFAULT 0,
	seqs     TEXT    NOT NULL DEFAULT '',
	actor_id INTEGER NOT NULL DEFAULT 0,
	at       INTEGER NOT NULL,
	PRIMARY KEY (chat_id, pts)
) WITHOUT ROWID;

CREATE TABLE chat_invites (
	code       TEXT PRIMARY KEY,
	chat_id    INTEGER NOT NULL,
	created_by INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	revoked    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX chat_invites_chat ON chat_invites(chat_id);
