-- Secret groups (docs/SECRET.md): the server keeps only what it needs
-- to fan ciphertext out, the members and who among them may change the
-- membership. The title and every message stay on the devices.
CREATE TABLE secret_groups (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	created_by INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE secret_group_members (
	group_id INTEGER NOT NULL,
	user_id  INTEGER NOT NULL,
	admin    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX secret_group_members_user ON secret_group_members (user_id);

-- The group a sender-key envelope belongs to; 0 for a pairwise one.
ALTER TABLE envelopes ADD COLUMN group_id INTEGER NOT NULL DEFAULT 0;
