-- Calls (issue 18): the signalling state of 1:1 calls, so that any node
-- can take an answer or a hang-up, and a second call to someone in a call
-- finds them busy. Media never touches the database, and a row holds no
-- content: who called whom, when, and how it ended (what the chat's
-- service message also says).
CREATE TABLE calls (
	id            TEXT PRIMARY KEY,
	chat_id       BIGINT NOT NULL,
	caller_id     BIGINT NOT NULL,
	callee_id     BIGINT NOT NULL,
	caller_device BIGINT NOT NULL,
	callee_device BIGINT NOT NULL DEFAULT 0,
	video         INTEGER NOT NULL DEFAULT 0,
	state         TEXT NOT NULL,
	outcome       TEXT NOT NULL DEFAULT '',
	started_at    BIGINT NOT NULL,
	accepted_at   BIGINT NOT NULL DEFAULT 0,
	ended_at      BIGINT NOT NULL DEFAULT 0
);
-- The busy check looks for a person's calls that are not over.
CREATE INDEX calls_caller_live ON calls (caller_id) WHERE state <> 'ended';
CREATE INDEX calls_callee_live ON calls (callee_id) WHERE state <> 'ended';
