package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// WaitingTimers implements store.Store.
func (r Reads) WaitingTimers(ctx context.Context, sealedBy time.Time, limit int) ([]herald.Message, error) {
	return r.messages(ctx,
		`SELECT `+MessageCols+` FROM messages WHERE waiting = 1 AND deleted = 0 AND sealed_until <= ? AND sealed_until < expires_at
		 ORDER BY sealed_until, chat_id, seq LIMIT ?`,
		Millis(sealedBy), limit)
}

// UnreadTimers implements store.Store.
func (r Reads) UnreadTimers(ctx context.Context, chatID, readerID, seq int64) ([]herald.Message, error) {
	return r.messages(ctx,
		`SELECT `+MessageCols+` FROM messages WHERE chat_id = ? AND seq <= ? AND sender_id <> ? AND waiting = 1 AND deleted = 0 ORDER BY seq`,
		chatID, seq, readerID)
}

// messages reads rows of MessageCols.
func (r Reads) messages(ctx context.Context, query string, args ...any) ([]herald.Message, error) {
	out, err := scanAll(ctx, r.q, ScanMessage, query, args...)
	return out, r.d.wrap("messages", err)
}
