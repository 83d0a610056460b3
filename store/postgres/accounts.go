package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
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

// UserByName implements store.Store.
func (db *DB) UserByName(ctx context.Context, username string) (herald.User, []byte, error) {
	var hash []byte
	u, err := scanUser(db.rq.queryRow(ctx,
		`SELECT `+userCols+`, password_hash FROM users WHERE username = ?`, username), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, nil, herald.Errorf(herald.NotFound, "no user @%s", username)
	}
	if err != nil {
		return u, nil, classify("postgres.UserByName", err)
	}
	return u, hash, nil
}

const userCols = `id, username, display_name, created_at, role, suspended_until, suspend_reason`

// scanUser reads userCols, then any extra columns into extra.
func scanUser(s interface{ Scan(...any) error }, extra ...any) (herald.User, error) {
	var u herald.User
	var created, until int64
	err := s.Scan(append([]any{&u.ID, &u.Username, &u.DisplayName, &created, &u.Role, &until, &u.SuspendReason}, extra...)...)
	u.CreatedAt, u.SuspendedUntil = sqlstore.FromMillis(created), sqlstore.FromMillis(until)
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
	rows, err := q.query(ctx, `SELECT `+userCols+` FROM users WHERE id = ANY(?)`, ids)
	if err != nil {
		return nil, classify("postgres.Users", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
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
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO invites (code, created_at) VALUES (?, ?)`, code, sqlstore.Millis(at))
		return classify("postgres.CreateInvite", err)
	})
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

const deviceCols = `id, user_id, name, created_at, last_seen`

func scanDevice(s interface{ Scan(...any) error }) (herald.Device, error) {
	var d herald.Device
	var created, seen int64
	err := s.Scan(&d.ID, &d.UserID, &d.Name, &created, &seen)
	d.CreatedAt, d.LastSeen = sqlstore.FromMillis(created), sqlstore.FromMillis(seen)
	return d, err
}

// DeviceByToken implements store.Store.
func (db *DB) DeviceByToken(ctx context.Context, tokenHash []byte) (herald.Device, error) {
	d, err := scanDevice(db.rq.queryRow(ctx, `SELECT `+deviceCols+` FROM devices WHERE token_hash = ?`, tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, herald.Errorf(herald.NotFound, "no device has this token")
	}
	return d, classify("postgres.DeviceByToken", err)
}

// Devices implements store.Store.
func (db *DB) Devices(ctx context.Context, userID int64) ([]herald.Device, error) {
	rows, err := db.rq.query(ctx, `SELECT `+deviceCols+` FROM devices WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, classify("postgres.Devices", err)
	}
	defer rows.Close()
	var out []herald.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, classify("postgres.Devices", err)
		}
		out = append(out, d)
	}
	return out, classify("postgres.Devices", rows.Err())
}

// DeleteDevice implements store.Store.
func (db *DB) DeleteDevice(ctx context.Context, userID, deviceID int64) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `DELETE FROM devices WHERE id = ? AND user_id = ?`, deviceID, userID)
		if err != nil {
			return classify("postgres.DeleteDevice", err)
		}
		if n == 0 {
			return herald.Errorf(herald.NotFound, "you have no device %d", deviceID)
		}
		return nil
	})
}

// TouchDevice implements store.Store.
func (db *DB) TouchDevice(ctx context.Context, deviceID int64, t time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, tx *tx) error {
		_, err := tx.exec(ctx, `UPDATE devices SET last_seen = ? WHERE id = ?`, sqlstore.Millis(t), deviceID)
		return classify("postgres.TouchDevice", err)
	})
}
