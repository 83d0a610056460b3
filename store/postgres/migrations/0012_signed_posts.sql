-- A channel post is signed or not when it is made (as on Telegram):
-- turning author signatures on must not reveal who wrote the earlier
-- posts. Posts made before this column existed take the channel's
-- setting of the moment of the upgrade, which is what they showed then.
ALTER TABLE messages ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET signed = 1
	WHERE service = 0 AND chat_id IN (SELECT id FROM chats WHERE kind = 3 AND signatures = 1);
