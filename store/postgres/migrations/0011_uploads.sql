-- Unfinished uploads count against their owner's storage quota from the
-- moment they are created, for their whole declared length: without
-- this, many uploads started at once each passed the quota check alone.
-- A row goes when its upload becomes a file, is cancelled, or is swept.
CREATE TABLE upload_reservations (
	id         TEXT PRIMARY KEY,
	owner_id   BIGINT NOT NULL,
	size       BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX upload_reservations_owner ON upload_reservations (owner_id);
CREATE INDEX upload_reservations_created ON upload_reservations (created_at);
