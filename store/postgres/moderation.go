package postgres

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Moderation = (*DB)(nil)

// affected turns an UPDATE's outcome into NotFound when it changed nothing.
func affected(n int64, err error, op, missing string) error {
	if err != nil {
		return classify(op, err)
	}
	if n == 0 {
		return herald.Errorf(herald.NotFound, "%s", missing)
	}
	return nil
}

// SetUserRole implements store.Moderation.
func (db *DB) SetUserRole(ctx context.Context, userID int64, role string) error {
	return db.do(ctx, locks{users: []int64{userID}}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID)
		return affected(n, err, "postgres.SetUserRole", "no such user")
	})
}

// Suspend implements store.Moderation.
func (db *DB) Suspend(ctx context.Context, userID int64, until time.Time, reason string, at time.Time) error {
	return db.do(ctx, locks{users: []int64{userID}}, func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE users SET suspended_until = ?, suspended_at = ?, suspend_reason = ? WHERE id = ?`,
			sqlstore.Millis(until), sqlstore.Millis(at), reason, userID)
		if err := affected(n, err, "postgres.Suspend", "no such user"); err != nil {
			return err
		}
		if until.IsZero() {
			return nil
		}
		_, err = t.exec(ctx, `DELETE FROM devices WHERE user_id = ?`, userID)
		return classify("postgres.Suspend", err)
	})
}

// SuspendedSince implements store.Moderation.
func (db *DB) SuspendedSince(ctx context.Context, t time.Time) ([]int64, error) {
	rows, err := db.rq.query(ctx, `SELECT id FROM users WHERE suspended_until > 0 AND suspended_at >= ?`, sqlstore.Millis(t))
	if err != nil {
		return nil, classify("postgres.SuspendedSince", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("postgres.SuspendedSince", err)
		}
		out = append(out, id)
	}
	return out, classify("postgres.SuspendedSince", rows.Err())
}

// SetTakedown implements store.Moderation.
func (db *DB) SetTakedown(ctx context.Context, chatID int64, down bool, reason string) error {
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error {
		n, err := t.exec(ctx, `UPDATE chats SET taken_down = ?, takedown_reason = ? WHERE id = ?`, sqlstore.Flag(down), reason, chatID)
		return affected(n, err, "postgres.SetTakedown", "no such chat")
	})
}

// Block implements store.Moderation.
func (db *DB) Block(ctx context.Context, userID, blockedID int64, on bool, at time.Time) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		var err error
		if on {
			_, err = t.exec(ctx, `INSERT INTO blocks (user_id, blocked_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, userID, blockedID, sqlstore.Millis(at))
		} else {
			_, err = t.exec(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID)
		}
		return classify("postgres.Block", err)
	})
}

// Blocked implements store.Moderation.
func (db *DB) Blocked(ctx context.Context, userID, blockedID int64) (bool, error) {
	var n int
	err := db.rq.queryRow(ctx, `SELECT count(*) FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID).Scan(&n)
	return n > 0, classify("postgres.Blocked", err)
}

const reportCols = `id, reporter_id, kind, target_user, target_chat, target_seq, reason, note, evidence, status, created_at`

func scanReport(s interface{ Scan(...any) error }) (herald.Report, error) {
	var r herald.Report
	var kind string
	var created int64
	err := s.Scan(&r.ID, &r.ReporterID, &kind, &r.TargetUser, &r.TargetChat, &r.TargetSeq, &r.Reason, &r.Note, &r.Evidence, &r.Status, &created)
	r.Kind, r.CreatedAt = herald.ReportKind(kind), sqlstore.FromMillis(created)
	return r, err
}

// CreateReport implements store.Moderation.
func (db *DB) CreateReport(ctx context.Context, r herald.Report) (herald.Report, error) {
	err := db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		r.Status = "open"
		return classify("postgres.CreateReport", t.queryRow(ctx,
			`INSERT INTO reports (reporter_id, kind, target_user, target_chat, target_seq, reason, note, evidence, status, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) RETURNING id`,
			r.ReporterID, string(r.Kind), r.TargetUser, r.TargetChat, r.TargetSeq, r.Reason, r.Note, r.Evidence, sqlstore.Millis(r.CreatedAt)).Scan(&r.ID))
	})
	return r, err
}

// Reports implements store.Moderation.
func (db *DB) Reports(ctx context.Context, status string, limit int) ([]herald.Report, error) {
	rows, err := db.rq.query(ctx,
		`SELECT `+reportCols+` FROM reports WHERE ?::text = '' OR status = ? ORDER BY id DESC LIMIT ?`, status, status, limit)
	if err != nil {
		return nil, classify("postgres.Reports", err)
	}
	defer rows.Close()
	var out []herald.Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, classify("postgres.Reports", err)
		}
		out = append(out, r)
	}
	return out, classify("postgres.Reports", rows.Err())
}

// Report implements store.Moderation.
func (db *DB) Report(ctx context.Context, id int64) (herald.Report, error) {
	r, err := scanReport(db.rq.queryRow(ctx, `SELECT `+reportCols+` FROM reports WHERE id = ?`, id))
	if noRows(err) {
		return r, herald.Errorf(herald.NotFound, "no report %d", id)
	}
	return r, classify("postgres.Report", err)
}

// ResolveReports implements store.Moderation.
func (db *DB) ResolveReports(ctx context.Context, kind herald.ReportKind, user, chat, seq int64, status string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx,
			`UPDATE reports SET status = ? WHERE status = 'open' AND target_user = ? AND target_chat = ? AND (?::bigint = 0 OR target_seq = ?)`,
			status, user, chat, seq, seq)
		return classify("postgres.ResolveReports", err)
	})
}

// AppendAudit implements store.Moderation.
func (db *DB) AppendAudit(ctx context.Context, e herald.AuditEntry) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO audit (at, operator, action, target, reason) VALUES (?, ?, ?, ?, ?)`,
			sqlstore.Millis(e.At), e.Operator, e.Action, e.Target, e.Reason)
		return classify("postgres.AppendAudit", err)
	})
}

// Audit implements store.Moderation.
func (db *DB) Audit(ctx context.Context, limit int) ([]herald.AuditEntry, error) {
	rows, err := db.rq.query(ctx, `SELECT id, at, operator, action, target, reason FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, classify("postgres.Audit", err)
	}
	defer rows.Close()
	var out []herald.AuditEntry
	for rows.Next() {
		var e herald.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Operator, &e.Action, &e.Target, &e.Reason); err != nil {
			return nil, classify("postgres.Audit", err)
		}
		e.At = sqlstore.FromMillis(at)
		out = append(out, e)
	}
	return out, classify("postgres.Audit", rows.Err())
}

// Setting implements store.Moderation.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.rq.queryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if noRows(err) {
		return "", nil
	}
	return v, classify("postgres.Setting", err)
}

// SetSetting implements store.Moderation.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	return db.do(ctx, locks{}, func(ctx context.Context, t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return classify("postgres.SetSetting", err)
	})
}
