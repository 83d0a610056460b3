-- Reactions, mentions and pinned messages (issue 20). All belong to a
-- live message: when a message is deleted for everyone or expires (its
-- row is flagged deleted, its body erased), its reactions, mentions, pin
-- and formatting go in the same statement, by trigger, so that no path
-- that deletes a message can forget them.
CREATE TABLE reactions (
	chat_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	user_id INTEGER NOT NULL,
	emoji   TEXT    NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (chat_id, seq, user_id, emoji)
) WITHOUT ROWID;

-- Who a message mentions (@username in its text, resolved to members
-- when it was sent), for the chat list's unread-mention count. It says
-- which message names whom, never what it says.
CREATE TABLE mentions (
	user_id INTEGER NOT NULL,
	chat_id INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	PRIMARY KEY (user_id, chat_id, seq)
) WITHOUT ROWID;

CREATE INDEX mentions_message ON mentions(chat_id, seq);

CREATE TABLE pins (
	chat_id   INTEGER NOT NULL,
	seq       INTEGER NOT NULL,
	pinned_by INTEGER NOT NULL,
	at        INTEGER NOT NULL,
	PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;

CREATE TRIGGER messages_deleted_annotations AFTER UPDATE OF deleted ON messages
WHEN NEW.deleted = 1 AND OLD.deleted = 0
BEGIN
	DELETE FROM reactions WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM pins WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM message_extras WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM mentions WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
END;
