-- Secret chats (docs/SECRET.md). Only public keys and ciphertext: the
-- private keys and the plaintext never reach the server.

-- A device's published identity key and current signed prekey.
CREATE TABLE device_keys (
	device_id       INTEGER PRIMARY KEY,
	user_id         INTEGER NOT NULL,
	registration_id INTEGER NOT NULL,
	identity_key    BLOB NOT NULL,
	signed_id       INTEGER NOT NULL,
	signed_key      BLOB NOT NULL,
	signed_sig      BLOB NOT NULL,
	signed_at       INTEGER NOT NULL,
	max_prekey_id   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX device_keys_user ON device_keys (user_id);

-- One-time prekeys not yet handed out; a claim deletes its row.
CREATE TABLE one_time_prekeys (
	device_id  INTEGER NOT NULL,
	key_id     INTEGER NOT NULL,
	public_key BLOB NOT NULL,
	PRIMARY KEY (device_id, key_id)
);

-- Per-device queues of envelopes, deleted on acknowledgement or expiry.
CREATE TABLE envelopes (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	device_id     INTEGER NOT NULL,
	user_id       INTEGER NOT NULL,
	sender_id     INTEGER NOT NULL,
	sender_device INTEGER NOT NULL,
	type          INTEGER NOT NULL,
	body          BLOB NOT NULL,
	sent_at       INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL
);
CREATE INDEX envelopes_device ON envelopes (device_id, id);
CREATE INDEX envelopes_expiry ON envelopes (expires_at);

-- Encrypted attachments of secret messages the recipient may download.
CREATE TABLE file_grants (
	file_id TEXT NOT NULL,
	user_id INTEGER NOT NULL,
	PRIMARY KEY (file_id, user_id)
);
