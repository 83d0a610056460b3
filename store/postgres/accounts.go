package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// CreateUser implements store.Store.
func (db *DB) CreateUser(ctx context.Context, u herald.User, hash []byte, invite string) (herald.User, error) {
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		if invite != "" {
			n, err := t.exec(ctx, sqlstore.ClaimInvite, invite)
			if err != nil {
				return classify("postgres.CreateUser", err)
			}
			if n != 1 {
				return herald.Errorf(herald.NotFound, "the invite code is unknown or already used")
			}
		}
		err := t.queryRow(ctx, sqlstore.InsertUser, u.Username, u.DisplayName, hash, sqlstore.Millis(u.CreatedAt)).Scan(&u.ID)
		if err == nil {
			b := &batch{}
			b.exec(sqlstore.InsertUserName, u.Username, u.ID)
			if invite != "" {
				b.exec(sqlstore.UseInvite, u.ID, invite)
			}
			err = b.run(ctx, t)
		}
		if err != nil {
			return dialect.Taken("CreateUser", err, "username", u.Username)
		}
		return nil
	})
	return u, err
}

// Users implements store.Store.
func (db *DB) Users(ctx context.Context, ids []int64) (map[int64]herald.User, error) {
	return users(ctx, db.rq, ids)
}

func users(ctx context.Context, q querier, ids []int64) (map[int64]herald.User, error) {
	out := make(map[int64]herald.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	// One array parameter instead of SQLite's IN (?, ?, …): one statement
	// text, prepared once, however many ids.
	rows, err := q.query(ctx, `SELECT `+sqlstore.UserCols+` FROM users WHERE id = ANY(?)`, ids)
	if err != nil {
		return nil, classify("postgres.Users", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := sqlstore.ScanUser(rows)
		if err != nil {
			return nil, classify("postgres.Users", err)
		}
		out[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, classify("postgres.Users", err)
	}
	return out, nil
}

// CreateInvite implements store.Store.
func (db *DB) CreateInvite(ctx context.Context, code string, at time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.CreateInvite(ctx, shim{t}, code, at) })
}

// CreateDevice implements store.Store.
func (db *DB) CreateDevice(ctx context.Context, d herald.Device, tokenHash []byte) (herald.Device, error) {
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		d, err = dialect.CreateDevice(ctx, shim{t}, d, tokenHash)
		return err
	})
	return d, err
}

// DeleteDevice implements store.Store.
func (db *DB) DeleteDevice(ctx context.Context, userID, deviceID int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error { return dialect.DeleteDevice(ctx, shim{t}, userID, deviceID) })
}

// TouchDevice implements store.Store.
func (db *DB) TouchDevice(ctx context.Context, deviceID int64, t time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, w *tx) error { return dialect.TouchDevice(ctx, shim{w}, deviceID, t) })
}
