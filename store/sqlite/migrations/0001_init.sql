-- Herald's first schema. Times are Unix milliseconds.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT    NOT NULL UNIQUE,
	display_name  TEXT    NOT NULL,
	password_hash BLOB    NOT NULL,
	created_at    INTEGER NOT NULL,
	pts           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE invites (
	code       TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	used_by    INTEGER
) WITHOUT ROWID;

CREATE TABLE devices (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users(id),
	name       TEXT    NOT NULL,
	token_hash BLOB    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE chats (
	id           INTEGER PRIMARY KEY,
	kind         INTEGER NOT NULL,
	title        TEXT    NOT NULL DEFAULT '',
	created_by   INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seq     INTEGER NOT NULL DEFAULT 0,
	last_at      INTEGER NOT NULL,
	member_count INTEGER NOT NULL DEFAULT 0
);

-- One row per pair of users, lower id first, so a pair has one direct chat.
CREATE TABLE direct_chats (
	user_lo INTEGER NOT NULL,
	user_hi INTEGER NOT NULL,
	chat_id INTEGER NOT NULL,
	PRIMARY KEY (user_lo, user_hi)
) WITHOUT ROWID;

CREATE TABLE members (
	chat_id   INTEGER NOT NULL,
	user_id   INTEGER NOT NULL,
	role      INTEGER NOT NULL,
	read_seq  INTEGER NOT NULL DEFAULT 0,
	joined_at INTEGER NOT NULL,
	PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members(user_id, chat_id);

-- body is sealed by the service; the store never holds message plaintext.
CREATE TABLE messages (
	chat_id   INTEGER NOT NULL,
	seq       INTEGER NOT NULL,
	sender_id INTEGER NOT NULL,
	random_id INTEGER NOT NULL DEFAULT 0,
	body      BLOB,
	reply_to  INTEGER NOT NULL DEFAULT 0,
	fwd_user  INTEGER NOT NULL DEFAULT 0,
	fwd_chat  INTEGER NOT NULL DEFAULT 0,
	fwd_seq   INTEGER NOT NULL DEFAULT 0,
	sent_at   INTEGER NOT NULL,
	edited_at INTEGER NOT NULL DEFAULT 0,
	deleted   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_random ON messages(chat_id, sender_id, random_id) WHERE random_id != 0;

-- Messages a user deleted for themself only.
CREATE TABLE hidden (
	user_id INTEGER NOT NULL,
	chat_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (user_id, chat_id, seq)
) WITHOUT ROWID;

-- Each user's update log; pts is gap-free per user.
CREATE TABLE updates (
	user_id  INTEGER NOT NULL,
	pts      INTEGER NOT NULL,
	kind     INTEGER NOT NULL,
	chat_id  INTEGER NOT NULL,
	seq      INTEGER NOT NULL DEFAULT 0,
	actor_id INTEGER NOT NULL DEFAULT 0,
	seqs     TEXT    NOT NULL DEFAULT '',
	at       INTEGER NOT NULL,
	PRIMARY KEY (user_id, pts)
) WITHOUT ROWID;
