-- Broadcast channels (and groups large enough to fan out on read), as
-- store/sqlite's 0002_channels.sql.

-- One namespace for @names: users and public channels.
CREATE TABLE names (
	name    TEXT PRIMARY KEY,
	user_id BIGINT,
	chat_id BIGINT
);
INSERT INTO names (name, user_id) SELECT username, id FROM users;

ALTER TABLE chats ADD COLUMN username    TEXT    NOT NULL DEFAULT '';
ALTER TABLE chats ADD COLUMN description TEXT    NOT NULL DEFAULT '';
ALTER TABLE chats ADD COLUMN signatures  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN broadcast   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN pts         BIGINT  NOT NULL DEFAULT 0;

ALTER TABLE members ADD COLUMN muted    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN view_seq BIGINT  NOT NULL DEFAULT 0;

-- Distinct viewers per post, kept as a counter: a member's view position
-- only moves forward, so each member adds one to each post once.
ALTER TABLE messages ADD COLUMN views BIGINT NOT NULL DEFAULT 0;

-- A broadcast chat's own log: one row per post, edit or delete, however
-- many members the chat has.
CREATE TABLE chat_updates (
	chat_id  BIGINT  NOT NULL,
	pts      BIGINT  NOT NULL,
	kind     INTEGER NOT NULL,
	seq      BIGINT  NOT NULL DEFAULT 0,
	seqs     TEXT    NOT NULL DEFAULT '',
	actor_id BIGINT  NOT NULL DEFAULT 0,
	at       BIGINT  NOT NULL,
	PRIMARY KEY (chat_id, pts)
);

CREATE TABLE chat_invites (
	code       TEXT    PRIMARY KEY,
	chat_id    BIGINT  NOT NULL,
	created_by BIGINT  NOT NULL,
	created_at BIGINT  NOT NULL,
	revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX chat_invites_chat ON chat_invites(chat_id);
