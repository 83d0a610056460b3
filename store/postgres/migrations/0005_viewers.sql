-- A member's view position outlives their membership, so leaving and
-- rejoining a channel does not count them as a viewer twice.
-- (members.view_seq, which it replaces, is no longer used.)
CREATE TABLE viewers (
	chat_id  BIGINT NOT NULL,
	user_id  BIGINT NOT NULL,
	view_seq BIGINT NOT NULL,
	PRIMARY KEY (chat_id, user_id)
);
INSERT INTO viewers (chat_id, user_id, view_seq) SELECT chat_id, user_id, view_seq FROM members WHERE view_seq > 0;
