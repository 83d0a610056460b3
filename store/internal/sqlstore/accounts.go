package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// Queries of signing up, for users and bots.
const (
	// ClaimInvite marks an unused invite code taken (used_by -1) until
	// UseInvite names the new user: code. The row it locks makes a
	// concurrent signup with the same code wait, then find it used.
	ClaimInvite = `UPDATE invites SET used_by = -1 WHERE code = ? AND used_by IS NULL`
	// UseInvite: user, code.
	UseInvite  = `UPDATE invites SET used_by = ? WHERE code = ?`
	InsertUser = `INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id`
	// InsertBotUser is InsertUser for a bot, whose password hash "!" is
	// no Argon2id hash, so no password ever matches it.
	InsertBotUser = `INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?, ?, '!', ?) RETURNING id`
	// InsertUserName claims a user's @name: name, user.
	InsertUserName = `INSERT INTO names (name, user_id) VALUES (?, ?)`
)

// Taken is the error of op failing with err where it claimed @name: that
// the name is taken, as what ("username", "name") names it, if err is a
// uniqueness violation, else err as the store's error.
func (d Dialect) Taken(op string, err error, what, name string) error {
	err = d.wrap(op, err)
	if herald.IsKind(err, herald.AlreadyExists) {
		return herald.Errorf(herald.AlreadyExists, "the %s @%s is taken", what, name)
	}
	return err
}

// UserByName implements store.Store.
func (r Reads) UserByName(ctx context.Context, username string) (herald.User, []byte, error) {
	var hash []byte
	u, err := ScanUser(r.q.QueryRow(ctx,
		`SELECT `+UserCols+`, password_hash FROM users WHERE username = ?`, username), &hash)
	if NoRows(err) {
		return u, nil, herald.Errorf(herald.NotFound, "no user @%s", username)
	}
	if err != nil {
		return u, nil, r.d.wrap("UserByName", err)
	}
	return u, hash, nil
}

// DeviceByToken implements store.Store.
func (r Reads) DeviceByToken(ctx context.Context, tokenHash []byte) (herald.Device, error) {
	d, err := ScanDevice(r.q.QueryRow(ctx, `SELECT `+DeviceCols+` FROM devices WHERE token_hash = ?`, tokenHash))
	if NoRows(err) {
		return d, herald.Errorf(herald.NotFound, "no device has this token")
	}
	return d, r.d.wrap("DeviceByToken", err)
}

// Devices implements store.Store.
func (r Reads) Devices(ctx context.Context, userID int64) ([]herald.Device, error) {
	out, err := scanAll(ctx, r.q, ScanDevice, `SELECT `+DeviceCols+` FROM devices WHERE user_id = ? ORDER BY id`, userID)
	return out, r.d.wrap("Devices", err)
}

// CreateInvite is store.Store's CreateInvite inside the writer's transaction tx.
func (d Dialect) CreateInvite(ctx context.Context, tx Querier, code string, at time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO invites (code, created_at) VALUES (?, ?)`, code, Millis(at))
	return d.wrap("CreateInvite", err)
}

// CreateDevice is store.Store's CreateDevice inside the writer's transaction tx.
func (d Dialect) CreateDevice(ctx context.Context, tx Querier, dev herald.Device, tokenHash []byte) (herald.Device, error) {
	err := tx.QueryRow(ctx,
		`INSERT INTO devices (user_id, name, token_hash, created_at, last_seen) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		dev.UserID, dev.Name, tokenHash, Millis(dev.CreatedAt), Millis(dev.LastSeen)).Scan(&dev.ID)
	return dev, d.wrap("CreateDevice", err)
}

// DeleteDevice is store.Store's DeleteDevice inside the writer's transaction tx.
func (d Dialect) DeleteDevice(ctx context.Context, tx Querier, userID, deviceID int64) error {
	n, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = ? AND user_id = ?`, deviceID, userID)
	if err == nil && n > 0 {
		// A revoked device's pushes would reach whoever holds it now.
		_, err = tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE device_id = ?`, deviceID)
	}
	return d.affected(n, err, "DeleteDevice", "you have no device %d", deviceID)
}

// TouchDevice is store.Store's TouchDevice inside the writer's transaction tx.
func (d Dialect) TouchDevice(ctx context.Context, tx Querier, deviceID int64, t time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE devices SET last_seen = ? WHERE id = ?`, Millis(t), deviceID)
	return d.wrap("TouchDevice", err)
}
