package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

var _ store.Moderation = (*DB)(nil)

// SetUserRole implements store.Moderation.
func (db *DB) SetUserRole(ctx context.Context, userID int64, role string) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID)
		return affected(res, err, "sqlite.SetUserRole", "no such user")
	})
}

func affected(res sql.Result, err error, op, missing string) error {
	if err != nil {
		return classify(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return herald.Errorf(herald.NotFound, "%s", missing)
	}
	return nil
}

// Suspend implements store.Moderation.
func (db *DB) Suspend(ctx context.Context, userID int64, until time.Time, reason string, at time.Time) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET suspended_until = ?, suspended_at = ?, suspend_reason = ? WHERE id = ?`,
			sqlstore.Millis(until), sqlstore.Millis(at), reason, userID)
		if err := affected(res, err, "sqlite.Suspend", "no such user"); err != nil {
			return err
		}
		if until.IsZero() {
			return nil
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ?`, userID)
		return classify("sqlite.Suspend", err)
	})
}

// SuspendedSince implements store.Moderation.
func (db *DB) SuspendedSince(ctx context.Context, t time.Time) ([]int64, error) {
	rows, err := db.rq.QueryContext(ctx, `SELECT id FROM users WHERE suspended_until > 0 AND suspended_at >= ?`, sqlstore.Millis(t))
	if err != nil {
		return nil, classify("sqlite.SuspendedSince", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("sqlite.SuspendedSince", err)
		}
		out = append(out, id)
	}
	return out, classify("sqlite.SuspendedSince", rows.Err())
}

// SetTakedown implements store.Moderation.
func (db *DB) SetTakedown(ctx context.Context, chatID int64, down bool, reason string) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, `UPDATE chats SET taken_down = ?, takedown_reason = ? WHERE id = ?`, sqlstore.Flag(down), reason, chatID)
		return affected(res, err, "sqlite.SetTakedown", "no such chat")
	})
}

// Block implements store.Moderation.
func (db *DB) Block(ctx context.Context, userID, blockedID int64, on bool, at time.Time) error {
	return db.do(ctx, func(tx querier) error {
		var err error
		if on {
			_, err = tx.ExecContext(ctx, `INSERT INTO blocks (user_id, blocked_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, userID, blockedID, sqlstore.Millis(at))
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID)
		}
		return classify("sqlite.Block", err)
	})
}

// Blocked implements store.Moderation.
func (db *DB) Blocked(ctx context.Context, userID, blockedID int64) (bool, error) {
	var n int
	err := db.rq.QueryRowContext(ctx, `SELECT count(*) FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID).Scan(&n)
	return n > 0, classify("sqlite.Blocked", err)
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
	err := db.do(ctx, func(tx querier) error {
		r.Status = "open"
		return classify("sqlite.CreateReport", tx.QueryRowContext(ctx,
			`INSERT INTO reports (reporter_id, kind, target_user, target_chat, target_seq, reason, note, evidence, status, created_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) RETURNING id`,
			r.ReporterID, string(r.Kind), r.TargetUser, r.TargetChat, r.TargetSeq, r.Reason, r.Note, r.Evidence, sqlstore.Millis(r.CreatedAt)).Scan(&r.ID))
	})
	return r, err
}

// Reports implements store.Moderation.
func (db *DB) Reports(ctx context.Context, status string, limit int) ([]herald.Report, error) {
	rows, err := db.rq.QueryContext(ctx,
		`SELECT `+reportCols+` FROM reports WHERE ? = '' OR status = ? ORDER BY id DESC LIMIT ?`, status, status, limit)
	if err != nil {
		return nil, classify("sqlite.Reports", err)
	}
	defer rows.Close()
	var out []herald.Report
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, classify("sqlite.Reports", err)
		}
		out = append(out, r)
	}
	return out, classify("sqlite.Reports", rows.Err())
}

// Report implements store.Moderation.
func (db *DB) Report(ctx context.Context, id int64) (herald.Report, error) {
	r, err := scanReport(db.rq.QueryRowContext(ctx, `SELECT `+reportCols+` FROM reports WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, herald.Errorf(herald.NotFound, "no report %d", id)
	}
	return r, classify("sqlite.Report", err)
}

// ResolveReports implements store.Moderation.
func (db *DB) ResolveReports(ctx context.Context, kind herald.ReportKind, user, chat, seq int64, status string) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx,
			`UPDATE reports SET status = ? WHERE status = 'open' AND target_user = ? AND target_chat = ? AND (? = 0 OR target_seq = ?)`,
			status, user, chat, seq, seq)
		return classify("sqlite.ResolveReports", err)
	})
}

// AppendAudit implements store.Moderation.
func (db *DB) AppendAudit(ctx context.Context, e herald.AuditEntry) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, operator, action, target, reason) VALUES (?, ?, ?, ?, ?)`,
			sqlstore.Millis(e.At), e.Operator, e.Action, e.Target, e.Reason)
		return classify("sqlite.AppendAudit", err)
	})
}

// Audit implements store.Moderation.
func (db *DB) Audit(ctx context.Context, limit int) ([]herald.AuditEntry, error) {
	rows, err := db.rq.QueryContext(ctx, `SELECT id, at, operator, action, target, reason FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, classify("sqlite.Audit", err)
	}
	defer rows.Close()
	var out []herald.AuditEntry
	for rows.Next() {
		var e herald.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Operator, &e.Action, &e.Target, &e.Reason); err != nil {
			return nil, classify("sqlite.Audit", err)
		}
		e.At = sqlstore.FromMillis(at)
		out = append(out, e)
	}
	return out, classify("sqlite.Audit", rows.Err())
}

// Setting implements store.Moderation.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := db.rq.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, classify("sqlite.Setting", err)
}

// SetSetting implements store.Moderation.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return classify("sqlite.SetSetting", err)
	})
}
