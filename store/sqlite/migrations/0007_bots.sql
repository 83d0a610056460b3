-- Bots (issue 10). A bot is an ordinary users row (so chats, members and
-- update logs need nothing new) plus this row. token_hash is NULL once the
-- bot is deleted; the row stays so the account keeps reading as a bot.
CREATE TABLE bots (
	user_id         INTEGER PRIMARY KEY,
	owner_id        INTEGER NOT NULL,
	token_hash      BLOB,
	created_at      INTEGER NOT NULL,
	read_all        INTEGER NOT NULL DEFAULT 0,
	webhook_url     TEXT    NOT NULL DEFAULT '',
	webhook_secret  TEXT    NOT NULL DEFAULT '',
	allowed_updates TEXT    NOT NULL DEFAULT '',
	max_connections INTEGER NOT NULL DEFAULT 0,
	commands        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX bots_owner ON bots(owner_id);

-- A message's sealed extras: a bot's inline keyboard and text entities.
CREATE TABLE message_extras (
	chat_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	extra   BLOB    NOT NULL,
	PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;

-- Presses of inline buttons, for the bot to answer.
CREATE TABLE callbacks (
	id       INTEGER PRIMARY KEY,
	bot_id   INTEGER NOT NULL,
	user_id  INTEGER NOT NULL,
	chat_id  INTEGER NOT NULL,
	seq      INTEGER NOT NULL,
	data     TEXT    NOT NULL,
	at       INTEGER NOT NULL,
	answered INTEGER NOT NULL DEFAULT 0
);

-- How far each bot has copied each broadcast chat's log (channels and
-- large groups fan out on read) into its own update log.
CREATE TABLE bot_cursors (
	bot_id  INTEGER NOT NULL,
	chat_id INTEGER NOT NULL,
	pts     INTEGER NOT NULL,
	PRIMARY KEY (bot_id, chat_id)
) WITHOUT ROWID;
