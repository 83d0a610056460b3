-- Version 10 is PostgreSQL's leases and shared rate buckets
-- (store/postgres/migrations/0010_leases.sql). An SQLite file is served
-- by one node, which keeps both in its memory, so nothing changes here;
-- the version is recorded so that both stores' schemas keep one
-- numbering.
SELECT 1;
