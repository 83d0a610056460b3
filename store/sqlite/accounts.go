package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// querier is what reads need; *sql.DB and *sql.Conn both have it, so a
// helper works inside the writer's transaction and on the read pool.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateUser implements store.Store.
func (db *DB) CreateUser(ctx context.Context, u herald.User, hash []byte, invite string) (herald.User, error) {
	err := db.do(ctx, func(tx querier) error {
		if invite != "" {
			res, err := tx.ExecContext(ctx, sqlstore.ClaimInvite, invite)
			if err != nil {
				return classify("sqlite.CreateUser", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return herald.Errorf(herald.NotFound, "the invite code is unknown or already used")
			}
		}
		err := tx.QueryRowContext(ctx, sqlstore.InsertUser, u.Username, u.DisplayName, hash, sqlstore.Millis(u.CreatedAt)).Scan(&u.ID)
		if err == nil {
			_, err = tx.ExecContext(ctx, sqlstore.InsertUserName, u.Username, u.ID)
		}
		if err != nil {
			return dialect.Taken("CreateUser", err, "username", u.Username)
		}
		if invite != "" {
			if _, err := tx.ExecContext(ctx, sqlstore.UseInvite, u.ID, invite); err != nil {
				return classify("sqlite.CreateUser", err)
			}
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
	for len(ids) > 0 {
		n := min(len(ids), 500)
		chunk := ids[:n]
		ids = ids[n:]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := q.QueryContext(ctx,
			`SELECT `+sqlstore.UserCols+` FROM users WHERE id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, classify("sqlite.Users", err)
		}
		for rows.Next() {
			u, err := sqlstore.ScanUser(rows)
			if err != nil {
				rows.Close()
				return nil, classify("sqlite.Users", err)
			}
			out[u.ID] = u
		}
		if err := rows.Close(); err != nil {
			return nil, classify("sqlite.Users", err)
		}
	}
	return out, nil
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// CreateInvite implements store.Store.
func (db *DB) CreateInvite(ctx context.Context, code string, at time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.CreateInvite(ctx, shim{tx}, code, at) })
}

// CreateDevice implements store.Store.
func (db *DB) CreateDevice(ctx context.Context, d herald.Device, tokenHash []byte) (herald.Device, error) {
	err := db.do(ctx, func(tx querier) error {
		var err error
		d, err = dialect.CreateDevice(ctx, shim{tx}, d, tokenHash)
		return err
	})
	return d, err
}

// DeleteDevice implements store.Store.
func (db *DB) DeleteDevice(ctx context.Context, userID, deviceID int64) error {
	return db.do(ctx, func(tx querier) error { return dialect.DeleteDevice(ctx, shim{tx}, userID, deviceID) })
}

// TouchDevice implements store.Store.
func (db *DB) TouchDevice(ctx context.Context, deviceID int64, t time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.TouchDevice(ctx, shim{tx}, deviceID, t) })
}
