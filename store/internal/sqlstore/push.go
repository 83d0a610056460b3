package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

const pushSubCols = `endpoint, device_id, user_id, p256dh, auth, created_at`

func scanPushSub(row Row) (herald.PushSubscription, error) {
	var s herald.PushSubscription
	var at int64
	err := row.Scan(&s.Endpoint, &s.DeviceID, &s.UserID, &s.P256dh, &s.Auth, &at)
	s.CreatedAt = FromMillis(at)
	return s, err
}

// AddPushSubscription is store.Push's AddPushSubscription inside the
// writer's transaction tx.
func (d Dialect) AddPushSubscription(ctx context.Context, tx Querier, s herald.PushSubscription, max int) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM push_subscriptions WHERE user_id = ? AND endpoint <> ?`, s.UserID, s.Endpoint).Scan(&n); err != nil {
		return d.wrap("AddPushSubscription", err)
	}
	if n >= max {
		return herald.Errorf(herald.RateLimited, "an account can have at most %d push subscriptions; remove one first", max)
	}
	_, err := tx.Exec(ctx, `INSERT INTO push_subscriptions (`+pushSubCols+`) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (endpoint) DO UPDATE SET device_id = excluded.device_id, user_id = excluded.user_id,
			p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at, focused_until = 0`,
		s.Endpoint, s.DeviceID, s.UserID, s.P256dh, s.Auth, Millis(s.CreatedAt))
	return d.wrap("AddPushSubscription", err)
}

// DeletePushSubscription is store.Push's DeletePushSubscription inside
// the writer's transaction tx.
func (d Dialect) DeletePushSubscription(ctx context.Context, tx Querier, userID int64, endpoint string) error {
	n, err := tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint = ?`, userID, endpoint)
	return d.affected(n, err, "DeletePushSubscription", "you have no push subscription at that endpoint")
}

// DropPushEndpoint is store.Push's DropPushEndpoint inside the writer's
// transaction tx.
func (d Dialect) DropPushEndpoint(ctx context.Context, tx Querier, endpoint string) error {
	_, err := tx.Exec(ctx, `DELETE FROM push_subscriptions WHERE endpoint = ?`, endpoint)
	return d.wrap("DropPushEndpoint", err)
}

// SetPushFocus is store.Push's SetPushFocus inside the writer's
// transaction tx.
func (d Dialect) SetPushFocus(ctx context.Context, tx Querier, deviceID int64, until time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE push_subscriptions SET focused_until = ? WHERE device_id = ?`, Millis(until), deviceID)
	return d.wrap("SetPushFocus", err)
}

// SetPushPrefs is store.Push's SetPushPrefs inside the writer's
// transaction tx.
func (d Dialect) SetPushPrefs(ctx context.Context, tx Querier, userID int64, p herald.PushPrefs) error {
	_, err := tx.Exec(ctx, `INSERT INTO push_prefs (user_id, hide_text, hide_sender) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET hide_text = excluded.hide_text, hide_sender = excluded.hide_sender`,
		userID, Flag(p.HideText), Flag(p.HideSender))
	return d.wrap("SetPushPrefs", err)
}

// SetChatNotify is store.Push's SetChatNotify inside the writer's
// transaction tx.
func (d Dialect) SetChatNotify(ctx context.Context, tx Querier, userID, chatID int64, n herald.ChatNotify) error {
	var member bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE chat_id = ? AND user_id = ?)`, chatID, userID).Scan(&member); err != nil {
		return d.wrap("SetChatNotify", err)
	}
	if !member {
		return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
	}
	_, err := tx.Exec(ctx, `INSERT INTO push_chat (user_id, chat_id, level, mute_until) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, chat_id) DO UPDATE SET level = excluded.level, mute_until = excluded.mute_until`,
		userID, chatID, int64(n.Level), Millis(n.MuteUntil))
	return d.wrap("SetChatNotify", err)
}

// VAPIDKey is store.Push's VAPIDKey inside the writer's transaction tx.
func (d Dialect) VAPIDKey(ctx context.Context, tx Querier, private, public []byte) ([]byte, []byte, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO push_vapid (id, private, public) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, private, public); err != nil {
		return nil, nil, d.wrap("VAPIDKey", err)
	}
	var priv, pub []byte
	err := tx.QueryRow(ctx, `SELECT private, public FROM push_vapid WHERE id = 1`).Scan(&priv, &pub)
	return priv, pub, d.wrap("VAPIDKey", err)
}

// PushSubscriptions implements store.Push.
func (r Reads) PushSubscriptions(ctx context.Context, userID int64) ([]herald.PushSubscription, error) {
	out, err := scanAll(ctx, r.q, scanPushSub, `SELECT `+pushSubCols+` FROM push_subscriptions WHERE user_id = ? ORDER BY created_at, endpoint`, userID)
	return out, r.d.wrap("PushSubscriptions", err)
}

// UserPushTargets implements store.Push.
func (r Reads) UserPushTargets(ctx context.Context, userID, exceptDevice int64) ([]herald.PushSubscription, error) {
	out, err := scanAll(ctx, r.q, scanPushSub, `SELECT `+pushSubCols+` FROM push_subscriptions WHERE user_id = ? AND device_id <> ? ORDER BY endpoint`, userID, exceptDevice)
	return out, r.d.wrap("UserPushTargets", err)
}

// PushTargets implements store.Push.
func (r Reads) PushTargets(ctx context.Context, chatID, exceptUser int64, now time.Time) ([]herald.PushTarget, error) {
	out, err := scanAll(ctx, r.q, func(row Row) (herald.PushTarget, error) {
		var t herald.PushTarget
		var at, level, until, hideText, hideSender, muted int64
		err := row.Scan(&t.Endpoint, &t.DeviceID, &t.UserID, &t.P256dh, &t.Auth, &at,
			&level, &until, &hideText, &hideSender, &muted)
		t.CreatedAt = FromMillis(at)
		t.Notify = herald.ChatNotify{Level: herald.NotifyLevel(level), MuteUntil: FromMillis(until)}
		t.Prefs = herald.PushPrefs{HideText: hideText != 0, HideSender: hideSender != 0}
		t.Muted = muted != 0
		return t, err
	}, `SELECT s.endpoint, s.device_id, s.user_id, s.p256dh, s.auth, s.created_at,
			COALESCE(c.level, 0), COALESCE(c.mute_until, 0),
			COALESCE(p.hide_text, 0), COALESCE(p.hide_sender, 0), m.muted
		FROM members m
		JOIN push_subscriptions s ON s.user_id = m.user_id
		LEFT JOIN push_chat c ON c.user_id = m.user_id AND c.chat_id = m.chat_id
		LEFT JOIN push_prefs p ON p.user_id = m.user_id
		WHERE m.chat_id = ? AND m.user_id <> ? AND s.focused_until < ?
		ORDER BY s.endpoint`, chatID, exceptUser, Millis(now))
	return out, r.d.wrap("PushTargets", err)
}

// PushPrefs implements store.Push.
func (r Reads) PushPrefs(ctx context.Context, userID int64) (herald.PushPrefs, error) {
	var p herald.PushPrefs
	var text, sender int64
	err := r.q.QueryRow(ctx, `SELECT hide_text, hide_sender FROM push_prefs WHERE user_id = ?`, userID).Scan(&text, &sender)
	if NoRows(err) {
		return p, nil
	}
	p.HideText, p.HideSender = text != 0, sender != 0
	return p, r.d.wrap("PushPrefs", err)
}

// ChatNotify implements store.Push.
func (r Reads) ChatNotify(ctx context.Context, userID, chatID int64) (herald.ChatNotify, error) {
	var level, until int64
	err := r.q.QueryRow(ctx, `SELECT level, mute_until FROM push_chat WHERE user_id = ? AND chat_id = ?`, userID, chatID).Scan(&level, &until)
	if NoRows(err) {
		return herald.ChatNotify{}, nil
	}
	return herald.ChatNotify{Level: herald.NotifyLevel(level), MuteUntil: FromMillis(until)}, r.d.wrap("ChatNotify", err)
}
