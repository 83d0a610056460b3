package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// SuspendedSince implements store.Moderation.
func (r Reads) SuspendedSince(ctx context.Context, t time.Time) ([]int64, error) {
	rows, err := r.q.Query(ctx, `SELECT id FROM users WHERE suspended_until > 0 AND suspended_at >= ?`, Millis(t))
	if err != nil {
		return nil, r.d.wrap("SuspendedSince", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, r.d.wrap("SuspendedSince", err)
		}
		out = append(out, id)
	}
	return out, r.d.wrap("SuspendedSince", rows.Err())
}

// Blocked implements store.Moderation.
func (r Reads) Blocked(ctx context.Context, userID, blockedID int64) (bool, error) {
	var n int
	err := r.q.QueryRow(ctx, `SELECT count(*) FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID).Scan(&n)
	return n > 0, r.d.wrap("Blocked", err)
}

// Reports implements store.Moderation.
func (r Reads) Reports(ctx context.Context, status string, limit int) ([]herald.Report, error) {
	out, err := scanAll(ctx, r.q, scanReport,
		`SELECT `+reportCols+` FROM reports WHERE CAST(? AS TEXT) = '' OR status = ? ORDER BY id DESC LIMIT ?`, status, status, limit)
	return out, r.d.wrap("Reports", err)
}

// Report implements store.Moderation.
func (r Reads) Report(ctx context.Context, id int64) (herald.Report, error) {
	rep, err := scanReport(r.q.QueryRow(ctx, `SELECT `+reportCols+` FROM reports WHERE id = ?`, id))
	if NoRows(err) {
		return rep, herald.Errorf(herald.NotFound, "no report %d", id)
	}
	return rep, r.d.wrap("Report", err)
}

// Audit implements store.Moderation.
func (r Reads) Audit(ctx context.Context, limit int) ([]herald.AuditEntry, error) {
	rows, err := r.q.Query(ctx, `SELECT id, at, operator, action, target, reason FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, r.d.wrap("Audit", err)
	}
	defer rows.Close()
	var out []herald.AuditEntry
	for rows.Next() {
		var e herald.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Operator, &e.Action, &e.Target, &e.Reason); err != nil {
			return nil, r.d.wrap("Audit", err)
		}
		e.At = FromMillis(at)
		out = append(out, e)
	}
	return out, r.d.wrap("Audit", rows.Err())
}

// Setting implements store.Moderation.
func (r Reads) Setting(ctx context.Context, key string) (string, error) {
	var v string
	err := r.q.QueryRow(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if NoRows(err) {
		return "", nil
	}
	return v, r.d.wrap("Setting", err)
}

// SetUserRole is store.Moderation's SetUserRole inside the writer's transaction tx.
func (d Dialect) SetUserRole(ctx context.Context, tx Querier, userID int64, role string) error {
	n, err := tx.Exec(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, userID)
	return d.affected(n, err, "SetUserRole", "no such user")
}

// Suspend is store.Moderation's Suspend inside the writer's transaction tx.
func (d Dialect) Suspend(ctx context.Context, tx Querier, userID int64, until time.Time, reason string, at time.Time) error {
	n, err := tx.Exec(ctx, `UPDATE users SET suspended_until = ?, suspended_at = ?, suspend_reason = ? WHERE id = ?`,
		Millis(until), Millis(at), reason, userID)
	if err := d.affected(n, err, "Suspend", "no such user"); err != nil {
		return err
	}
	if until.IsZero() {
		return nil
	}
	_, err = tx.Exec(ctx, `DELETE FROM devices WHERE user_id = ?`, userID)
	return d.wrap("Suspend", err)
}

// SetTakedown is store.Moderation's SetTakedown inside the writer's transaction tx.
func (d Dialect) SetTakedown(ctx context.Context, tx Querier, chatID int64, down bool, reason string) error {
	n, err := tx.Exec(ctx, `UPDATE chats SET taken_down = ?, takedown_reason = ? WHERE id = ?`, Flag(down), reason, chatID)
	return d.affected(n, err, "SetTakedown", "no such chat")
}

// Block is store.Moderation's Block inside the writer's transaction tx.
func (d Dialect) Block(ctx context.Context, tx Querier, userID, blockedID int64, on bool, at time.Time) error {
	var err error
	if on {
		_, err = tx.Exec(ctx, `INSERT INTO blocks (user_id, blocked_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, userID, blockedID, Millis(at))
	} else {
		_, err = tx.Exec(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID)
	}
	return d.wrap("Block", err)
}

// ResolveReports is store.Moderation's ResolveReports inside the writer's transaction tx.
func (d Dialect) ResolveReports(ctx context.Context, tx Querier, kind herald.ReportKind, user, chat, seq int64, status string) error {
	_, err := tx.Exec(ctx,
		`UPDATE reports SET status = ? WHERE status = 'open' AND target_user = ? AND target_chat = ? AND (CAST(? AS BIGINT) = 0 OR target_seq = ?)`,
		status, user, chat, seq, seq)
	return d.wrap("ResolveReports", err)
}

// AppendAudit is store.Moderation's AppendAudit inside the writer's transaction tx.
func (d Dialect) AppendAudit(ctx context.Context, tx Querier, e herald.AuditEntry) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit (at, operator, action, target, reason) VALUES (?, ?, ?, ?, ?)`,
		Millis(e.At), e.Operator, e.Action, e.Target, e.Reason)
	return d.wrap("AppendAudit", err)
}

// SetSetting is store.Moderation's SetSetting inside the writer's transaction tx.
func (d Dialect) SetSetting(ctx context.Context, tx Querier, key, value string) error {
	_, err := tx.Exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return d.wrap("SetSetting", err)
}

const reportCols = `id, reporter_id, kind, target_user, target_chat, target_seq, reason, note, evidence, status, created_at`

func scanReport(s Row) (herald.Report, error) {
	var r herald.Report
	var kind string
	var created int64
	err := s.Scan(&r.ID, &r.ReporterID, &kind, &r.TargetUser, &r.TargetChat, &r.TargetSeq, &r.Reason, &r.Note, &r.Evidence, &r.Status, &created)
	r.Kind, r.CreatedAt = herald.ReportKind(kind), FromMillis(created)
	return r, err
}

// CreateReport is store.Moderation's CreateReport inside the writer's
// transaction tx.
func (d Dialect) CreateReport(ctx context.Context, tx Querier, r herald.Report) (herald.Report, error) {
	r.Status = "open"
	err := tx.QueryRow(ctx,
		`INSERT INTO reports (reporter_id, kind, target_user, target_chat, target_seq, reason, note, evidence, status, created_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?) RETURNING id`,
		r.ReporterID, string(r.Kind), r.TargetUser, r.TargetChat, r.TargetSeq, r.Reason, r.Note, r.Evidence, Millis(r.CreatedAt)).Scan(&r.ID)
	return r, d.wrap("CreateReport", err)
}
