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
			// The row lock this takes makes a concurrent signup with the
			// same code wait, then find it used.
			n, err := t.exec(ctx, `UPDATE invites SET used_by = -1 WHERE code = ? AND used_by IS NULL`, invite)
			if err != nil {
				return classify("postgres.CreateUser", err)
			}
			if n != 1 {
				return herald.Errorf(herald.NotFound, "the invite code is unknown or already used")
			}
		}
		err := t.queryRow(ctx,
			`INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`,
			u.Username, u.DisplayName, hash, sqlstore.Millis(u.CreatedAt)).Scan(&u.ID)
		if err == nil {
			b := &batch{}
			b.exec(`INSERT INTO names (name, user_id) VALUES (?, ?)`, u.Username, u.ID)
			if invite != "" {
				b.exec(`UPDATE invites SET used_by = ? WHERE code = ?`, u.ID, invite)
			}
			err = b.run(ctx, t)
		}
		if err != nil {
			err = classify("postgres.CreateUser", err)
			if herald.IsKind(err, herald.AlreadyExists) {
				return herald.Errorf(herald.AlreadyExists, "the username @%s is taken", u.Username)
			}
			return err
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
		err := t.queryRow(ctx,
			`INSERT INTO devices (user_id, name, token_hash, created_at, last_seen) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			d.UserID, d.Name, tokenHash, sqlstore.Millis(d.CreatedAt), sqlstore.Millis(d.LastSeen)).Scan(&d.ID)
		return classify("postgres.CreateDevice", err)
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
