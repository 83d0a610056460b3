package postgres

import (
	"context"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
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

// nowUS is the database's clock in microseconds: leases and buckets are
// timed by one clock, whichever node asks.
const nowUS = `(extract(epoch FROM now()) * 1000000)::bigint`

// Lease implements store.Leaser: one upsert that takes the row when it is
// free, lapsed or already holder's.
func (db *DB) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var got string
	err := db.rq.queryRow(ctx, `INSERT INTO leases AS l (name, holder, until_us) VALUES (?, ?, `+nowUS+` + ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us
		WHERE l.holder = excluded.holder OR l.until_us < `+nowUS+`
		RETURNING holder`, name, holder, ttl.Microseconds()).Scan(&got)
	if noRows(err) {
		return false, nil
	}
	return err == nil, classify("postgres.Lease", err)
}

// LeaseAll implements store.Leaser: the upsert of Lease over an array.
// Names are taken in sorted order, so two nodes asking for overlapping
// sets lock their rows in one order and do not deadlock.
func (db *DB) LeaseAll(ctx context.Context, names []string, holder string, ttl time.Duration) ([]string, error) {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	if len(names) == 0 {
		return nil, nil
	}
	rows, err := db.rq.query(ctx, `INSERT INTO leases AS l (name, holder, until_us)
		SELECT n, ?, `+nowUS+` + ? FROM unnest(CAST(? AS TEXT[])) AS n ORDER BY n
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_us = excluded.until_us
		WHERE l.holder = excluded.holder OR l.until_us < `+nowUS+`
		RETURNING name`, holder, ttl.Microseconds(), names)
	if err != nil {
		return nil, classify("postgres.LeaseAll", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[string])
	slices.Sort(held)
	return held, classify("postgres.LeaseAll", err)
}

// Release implements store.Leaser.
func (db *DB) Release(ctx context.Context, name, holder string) error {
	_, err := db.rq.exec(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return classify("postgres.Release", err)
}

// TakeToken implements store.Rates with GCRA: a bucket is one row holding
// the time at which it would be full again if nothing more were spent
// (its theoretical arrival time), so taking a token is one upsert that
// moves that time on by one interval unless it would run more than burst
// intervals ahead of now. Only a refusal costs a second query, for the
// wait. The table is UNLOGGED (migration 0010): no fsync on the send path.
func (db *DB) TakeToken(ctx context.Context, key string, every time.Duration, burst int, spend bool) (time.Duration, error) {
	k := bucketKey(key)
	step, window := every.Microseconds(), int64(burst)*every.Microseconds()
	for try := 0; ; try++ {
		if spend {
			var tat int64
			err := db.rq.queryRow(ctx, `INSERT INTO rate_buckets AS b (key, tat_us) VALUES (?, `+nowUS+` + ?)
				ON CONFLICT (key) DO UPDATE SET tat_us = greatest(b.tat_us, `+nowUS+`) + ?
				WHERE greatest(b.tat_us, `+nowUS+`) + ? - `+nowUS+` <= ?
				RETURNING tat_us`, k, step, step, step, window).Scan(&tat)
			if err == nil {
				return 0, nil
			}
			if !noRows(err) {
				return 0, classify("postgres.TakeToken", err)
			}
		}
		var wait int64
		err := db.rq.queryRow(ctx, `SELECT greatest(b.tat_us, `+nowUS+`) + ? - `+nowUS+` - ? FROM rate_buckets b WHERE key = ?`,
			step, window, k).Scan(&wait)
		switch {
		case noRows(err) || (err == nil && wait <= 0):
			// A refusal followed by a full bucket means it filled in
			// between the two statements: worth one more try.
			if !spend || try > 0 {
				return 0, nil
			}
		case err != nil:
			return 0, classify("postgres.TakeToken", err)
		default:
			return time.Duration(wait) * time.Microsecond, nil
		}
	}
}

// ReturnToken implements store.TokenReturner. A bucket whose arrival
// time falls into the past by it is simply full.
func (db *DB) ReturnToken(ctx context.Context, key string, every time.Duration) error {
	_, err := db.rq.exec(ctx, `UPDATE rate_buckets SET tat_us = tat_us - ? WHERE key = ?`, every.Microseconds(), bucketKey(key))
	return classify("postgres.ReturnToken", err)
}

// PruneTokens implements store.Rates: a bucket whose arrival time has
// passed is full, the same as no row.
func (db *DB) PruneTokens(ctx context.Context) error {
	_, err := db.rq.exec(ctx, `DELETE FROM rate_buckets WHERE key IN
		(SELECT key FROM rate_buckets WHERE tat_us < `+nowUS+` LIMIT 10000)`)
	return classify("postgres.PruneTokens", err)
}

// bucketKey hashes a bucket's name, which holds an account id or a
// network address, so that neither is stored.
func bucketKey(key string) []byte {
	h := sha256.Sum256([]byte("herald rate bucket\x00" + key))
	return h[:16]
}
