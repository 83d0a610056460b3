package postgres

import (
	"context"
	"hash/fnv"
)

// LoadRing returns the shared key ring's state and version (nil and 0
// if none is stored): crypto.RingStorage.
func (db *DB) LoadRing(ctx context.Context) ([]byte, int64, error) {
	var data []byte
	var v int64
	err := db.rq.queryRow(ctx, `SELECT data, version FROM keyring WHERE id = 1`).Scan(&data, &v)
	if noRows(err) {
		return nil, 0, nil
	}
	return data, v, classify("postgres.LoadRing", err)
}

// SaveRing stores the key ring's state if its version is still prev:
// crypto.RingStorage. It runs outside the batched writer: it is rare, and
// the ring must be durable before any value sealed under a new bucket is.
func (db *DB) SaveRing(ctx context.Context, data []byte, prev int64) (int64, bool, error) {
	if prev == 0 {
		tag, err := db.read.Exec(ctx, `INSERT INTO keyring (id, version, data) VALUES (1, 1, $1) ON CONFLICT (id) DO NOTHING`, data)
		if err != nil {
			return 0, false, classify("postgres.SaveRing", err)
		}
		return 1, tag.RowsAffected() == 1, nil
	}
	tag, err := db.read.Exec(ctx, `UPDATE keyring SET data = $1, version = version + 1 WHERE id = 1 AND version = $2`, data, prev)
	if err != nil {
		return 0, false, classify("postgres.SaveRing", err)
	}
	return prev + 1, tag.RowsAffected() == 1, nil
}

// TryLock takes a lock named name across every node on this database
// unless another node holds it (ok false): a PostgreSQL session advisory
// lock, on a connection held until unlock. If the node dies, its session
// ends and the lock with it, so no lease needs to time out.
func (db *DB) TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error) {
	h := fnv.New64a()
	h.Write([]byte("herald lock " + name))
	key := int64(h.Sum64())
	conn, err := db.read.Acquire(ctx)
	if err != nil {
		return nil, false, classify("postgres.TryLock", err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, classify("postgres.TryLock", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		// A failed unlock (the connection broke) still ends the lock,
		// with the session; the broken connection is not reused.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			conn.Conn().Close(context.Background())
		}
		conn.Release()
	}, true, nil
}
