-- Trust and safety: operators, suspensions, takedowns, blocks, reports,
-- the audit log and the server's rules.

ALTER TABLE users ADD COLUMN role            TEXT    NOT NULL DEFAULT '';  -- '' or 'moderator'
ALTER TABLE users ADD COLUMN suspended_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspended_at    INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspend_reason  TEXT    NOT NULL DEFAULT '';
CREATE INDEX users_suspended ON users(suspended_at) WHERE suspended_until > 0;

ALTER TABLE chats ADD COLUMN taken_down      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN takedown_reason TEXT    NOT NULL DEFAULT '';

CREATE TABLE blocks (
	user_id    INTEGER NOT NULL,
	blocked_id INTEGER NOT NULL,
	at         INTEGER NOT NULL,
	PRIMARY KEY (user_id, blocked_id)
) WITHOUT ROWID;

-- evidence is what the reporter chose to attach, sealed like message bodies.
CREATE TABLE reports (
	id          INTEGER PRIMARY KEY,
	reporter_id INTEGER NOT NULL,
	kind        TEXT    NOT NULL,  -- user, chat, message, appeal
	target_user INTEGER NOT NULL DEFAULT 0,
	target_chat INTEGER NOT NULL DEFAULT 0,
	target_seq  INTEGER NOT NULL DEFAULT 0,
	reason      TEXT    NOT NULL,
	note        TEXT    NOT NULL DEFAULT '',
	evidence    BLOB,
	status      TEXT    NOT NULL DEFAULT 'open',
	created_at  INTEGER NOT NULL
);
CREATE INDEX reports_status ON reports(status, id);

-- Append-only: the triggers refuse any change to a written entry.
CREATE TABLE audit (
	id       INTEGER PRIMARY KEY,
	at       INTEGER NOT NULL,
	operator TEXT    NOT NULL,
	action   TEXT    NOT NULL,
	target   TEXT    NOT NULL,
	reason   TEXT    NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
