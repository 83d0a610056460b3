-- Self-destructing messages and chat auto-delete timers, as store/sqlite's
-- 0003_expiry.sql. Times in ms.

-- ttl: the sender's timer. expires_at: when the message is deleted, for
-- every message with a timer; while waiting = 1 (a direct-chat timer that
-- starts at the recipient's read) it is the latest possible moment, sent
-- time plus seven days. sealed_until: the end of the key-ring bucket the
-- body is sealed in (0: sealed under the master key, no timer).
ALTER TABLE messages ADD COLUMN ttl          BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN expires_at   BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN waiting      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN sealed_until BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN service      INTEGER NOT NULL DEFAULT 0;

-- The sweeper finds what is due through these, never by scanning. Unlike
-- SQLite's indexes, whose entries carry the primary key, these name
-- (chat_id, seq) so that ties come out in the same order.
CREATE INDEX messages_expiry ON messages(expires_at, chat_id, seq) WHERE expires_at > 0 AND deleted = 0;
CREATE INDEX messages_waiting ON messages(sealed_until, chat_id, seq) WHERE waiting = 1 AND deleted = 0;

-- A chat's auto-delete timer for new messages.
ALTER TABLE chats ADD COLUMN ttl BIGINT NOT NULL DEFAULT 0;
