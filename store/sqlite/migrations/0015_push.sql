-- Push notifications (docs/NOTIFICATIONS.md). A subscription belongs to a
-- device: revoking the device deletes it. The endpoint is the push
-- service's URL for that device; p256dh and auth are the device's public
-- keys (RFC 8291), never a private key.
CREATE TABLE push_subscriptions (
	endpoint      TEXT    PRIMARY KEY,
	device_id     INTEGER NOT NULL,
	user_id       INTEGER NOT NULL,
	p256dh        TEXT    NOT NULL,
	auth          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	focused_until INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_device ON push_subscriptions (device_id);

-- What a user lets notifications show (defaults: all of it).
CREATE TABLE push_prefs (
	user_id     INTEGER PRIMARY KEY,
	hide_text   INTEGER NOT NULL DEFAULT 0,
	hide_sender INTEGER NOT NULL DEFAULT 0
);

-- Per-chat notification level (0 all, 1 mentions only, 2 off) and a mute
-- with an end time; no row is level 0, not muted.
CREATE TABLE push_chat (
	user_id    INTEGER NOT NULL,
	chat_id    INTEGER NOT NULL,
	level      INTEGER NOT NULL DEFAULT 0,
	mute_until INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, chat_id)
);

-- The server's VAPID key pair (RFC 8292), made by the first node to start
-- and shared by all, so every node signs alike. The private key is sealed.
CREATE TABLE push_vapid (
	id      INTEGER PRIMARY KEY,
	private BLOB NOT NULL,
	public  BLOB NOT NULL
);
