-- Reactions, mentions and pinned messages (issue 20). All belong to a
-- live message: when a message is deleted for everyone or expires (its
-- row is flagged deleted, its body erased), its reactions, mentions, pin
-- and formatting go in the same statement, by trigger, so that no path
-- that deletes a message can forget them.
CREATE TABLE reactions (
	chat_id BIGINT NOT NULL,
	seq     BIGINT NOT NULL,
	user_id BIGINT NOT NULL,
	emoji   TEXT   NOT NULL,
	at      BIGINT NOT NULL,
	PRIMARY KEY (chat_id, seq, user_id, emoji)
);

-- Who a message mentions (@username in its text, resolved to members
-- when it was sent), for the chat list's unread-mention count. It says
-- which message names whom, never what it says.
CREATE TABLE mentions (
	user_id BIGINT NOT NULL,
	chat_id BIGINT NOT NULL,
	seq     BIGINT NOT NULL,
	PRIMARY KEY (user_id, chat_id, seq)
);

CREATE INDEX mentions_message ON mentions(chat_id, seq);

CREATE TABLE pins (
	chat_id   BIGINT NOT NULL,
	seq       BIGINT NOT NULL,
	pinned_by BIGINT NOT NULL,
	at        BIGINT NOT NULL,
	PRIMARY KEY (chat_id, seq)
);

CREATE FUNCTION messages_deleted_annotations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM reactions WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM pins WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM message_extras WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	DELETE FROM mentions WHERE chat_id = NEW.chat_id AND seq = NEW.seq;
	RETURN NULL;
END;
$$;

CREATE TRIGGER messages_deleted_annotations AFTER UPDATE OF deleted ON messages
FOR EACH ROW WHEN (NEW.deleted = 1 AND OLD.deleted = 0)
EXECUTE FUNCTION messages_deleted_annotations();
