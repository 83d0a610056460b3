package sqlite

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
)

var _ store.Moderation = (*DB)(nil)

// SetUserRole implements store.Moderation.
func (db *DB) SetUserRole(ctx context.Context, userID int64, role string) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetUserRole(ctx, shim{tx}, userID, role) })
}

// Suspend implements store.Moderation.
func (db *DB) Suspend(ctx context.Context, userID int64, until time.Time, reason string, at time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.Suspend(ctx, shim{tx}, userID, until, reason, at) })
}

// SetTakedown implements store.Moderation.
func (db *DB) SetTakedown(ctx context.Context, chatID int64, down bool, reason string) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetTakedown(ctx, shim{tx}, chatID, down, reason) })
}

// Block implements store.Moderation.
func (db *DB) Block(ctx context.Context, userID, blockedID int64, on bool, at time.Time) error {
	return db.do(ctx, func(tx querier) error { return dialect.Block(ctx, shim{tx}, userID, blockedID, on, at) })
}

// CreateReport implements store.Moderation.
func (db *DB) CreateReport(ctx context.Context, r herald.Report) (herald.Report, error) {
	var out herald.Report
	err := db.do(ctx, func(tx querier) error {
		var err error
		out, err = dialect.CreateReport(ctx, shim{tx}, r)
		return err
	})
	return out, err
}

// ResolveReports implements store.Moderation.
func (db *DB) ResolveReports(ctx context.Context, kind herald.ReportKind, user, chat, seq int64, status string) error {
	return db.do(ctx, func(tx querier) error { return dialect.ResolveReports(ctx, shim{tx}, kind, user, chat, seq, status) })
}

// AppendAudit implements store.Moderation.
func (db *DB) AppendAudit(ctx context.Context, e herald.AuditEntry) error {
	return db.do(ctx, func(tx querier) error { return dialect.AppendAudit(ctx, shim{tx}, e) })
}

// SetSetting implements store.Moderation.
func (db *DB) SetSetting(ctx context.Context, key, value string) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetSetting(ctx, shim{tx}, key, value) })
}
