package sqlite

import (
	"context"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// ExpireMessages implements store.Store.
func (db *DB) ExpireMessages(ctx context.Context, now time.Time, limit int) ([]herald.Update, int, error) {
	var ups []herald.Update
	var n int
	err := db.do(ctx, func(tx querier) error {
		ups, n = nil, 0
		order, due, err := dialect.DueMessages(ctx, shim{tx}, now, limit)
		if err != nil {
			return err
		}
		for _, chat := range order {
			for _, seq := range due[chat] {
				// secure_delete overwrites the body's old bytes in the file.
				// The row was read live in this transaction, so it is
				// still there: the single writer lets nobody in between.
				var gone int64
				if err := tx.QueryRowContext(ctx, sqlstore.ExpireMessage, chat, seq).Scan(&gone); err != nil {
					return classify("sqlite.ExpireMessages", err)
				}
				n++
			}
			got, err := logEverywhere(ctx, tx, herald.Update{Kind: herald.UpdDelete, ChatID: chat, Seqs: due[chat], At: now})
			if err != nil {
				return err
			}
			ups = append(ups, got...)
		}
		return nil
	})
	return ups, n, err
}

// Reseal implements store.Store.
func (db *DB) Reseal(ctx context.Context, msgs []herald.Message, announce bool, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		for _, m := range msgs {
			cur, err := sqlstore.ScanMessage(tx.QueryRowContext(ctx, sqlstore.Reseal,
				m.Body, sqlstore.Millis(m.SealedUntil), sqlstore.Millis(m.ExpiresAt), sqlstore.Flag(m.Waiting), m.ChatID, m.Seq))
			if sqlstore.NoRows(err) || (err == nil && !announce) {
				continue
			}
			if err != nil {
				return classify("sqlite.Reseal", err)
			}
			got, err := logEverywhere(ctx, tx, herald.Update{Kind: herald.UpdEditMessage, ChatID: m.ChatID, Seq: m.Seq, ActorID: m.SenderID, Message: &cur, At: at})
			if err != nil {
				return err
			}
			ups = append(ups, got...)
		}
		return nil
	})
	return ups, err
}

// SetChatTTL implements store.Store.
func (db *DB) SetChatTTL(ctx context.Context, chatID int64, ttl time.Duration) error {
	return db.do(ctx, func(tx querier) error { return dialect.SetChatTTL(ctx, shim{tx}, chatID, ttl) })
}

// Checkpoint implements store.Store. It runs on the writer's connection
// between transactions, so it waits for no one and nobody waits for it
// longer than one checkpoint.
func (db *DB) Checkpoint(ctx context.Context) error {
	return db.queue(&op{ctx: ctx, after: true, done: make(chan error, 1), fn: func(tx querier) error {
		// TRUNCATE resets the log to zero bytes once no reader needs it,
		// so the pages that held deleted bodies are gone from it too.
		_, err := tx.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		return classify("sqlite.Checkpoint", err)
	}})
}
