package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

// ExpireMessages implements store.Store.
//
// Every node runs the sweeper, and the database keeps them from doing the
// same work twice: the due messages are read without locks, then their
// chats (and those chats' members) are locked in the writers' order, and
// each UPDATE checks deleted = 0 again, so a message that another node's
// sweeper, or a user, deleted meanwhile is neither counted nor announced
// again. Because it learns which chats to lock only as it runs, it runs
// in a transaction of its own.
func (db *DB) ExpireMessages(ctx context.Context, now time.Time, limit int) ([]herald.Update, int, error) {
	var ups []herald.Update
	var n int
	err := db.doAlone(ctx, func(ctx context.Context, t *tx) error {
		ups, n = nil, 0
		order, due, err := dialect.DueMessages(ctx, shim{t}, now, limit)
		if err != nil {
			return err
		}
		if len(order) == 0 {
			return nil
		}
		sorted := slices.Sorted(slices.Values(order))
		lk := &batch{}
		lk.exec(lockChatsSQL, sorted)
		lk.exec(lockUsersSQL, []int64{}, sorted)
		if err := lk.run(ctx, t); err != nil {
			return classify("postgres.ExpireMessages", err)
		}
		bt := &batch{}
		changed := map[int64][]int64{}
		broadcast := make(map[int64]*bool, len(order))
		for _, chat := range order {
			for _, seq := range due[chat] {
				bt.row(func(r pgx.Row) error {
					var s int64
					err := r.Scan(&s)
					if err == nil {
						changed[chat] = append(changed[chat], s)
						n++
					}
					if noRows(err) {
						return nil
					}
					return err
				}, sqlstore.ExpireMessage, chat, seq)
			}
			broadcast[chat] = new(bool)
			isBroadcast(bt, chat, broadcast[chat])
		}
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.ExpireMessages", err)
		}
		bt = &batch{}
		for _, chat := range order {
			if len(changed[chat]) == 0 {
				continue
			}
			logEverywhere(bt, *broadcast[chat], herald.Update{Kind: herald.UpdDelete, ChatID: chat, Seqs: changed[chat], At: now}, &ups)
		}
		return classify("postgres.ExpireMessages", bt.run(ctx, t))
	})
	return ups, n, err
}

// Reseal implements store.Store.
func (db *DB) Reseal(ctx context.Context, msgs []herald.Message, announce bool, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	lk := locks{}
	for _, m := range msgs {
		lk.chats = append(lk.chats, m.ChatID)
		if announce {
			lk.members = append(lk.members, m.ChatID)
		}
	}
	err := db.do(ctx, lk, func(ctx context.Context, t *tx) error {
		ups = nil
		bt := &batch{}
		cur := make([]*herald.Message, len(msgs)) // the row after its update; nil if skipped
		broadcast := map[int64]*bool{}
		for i, m := range msgs {
			bt.row(func(r pgx.Row) error {
				got, err := sqlstore.ScanMessage(r)
				if err == nil {
					cur[i] = &got
				}
				if noRows(err) {
					return nil
				}
				return err
			}, sqlstore.Reseal, m.Body, sqlstore.Millis(m.SealedUntil), sqlstore.Millis(m.ExpiresAt), sqlstore.Flag(m.Waiting), m.ChatID, m.Seq)
			if announce && broadcast[m.ChatID] == nil {
				broadcast[m.ChatID] = new(bool)
				bt.row(func(r pgx.Row) error {
					var v int
					err := r.Scan(&v)
					*broadcast[m.ChatID] = v != 0
					if noRows(err) {
						return nil // no chat, so no message was updated in it
					}
					return err
				}, sqlstore.ChatBroadcast, m.ChatID)
			}
		}
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.Reseal", err)
		}
		if !announce {
			return nil
		}
		// The logs go in the order of msgs, as if each were announced
		// right after its own update: nothing in between changes a message.
		bt = &batch{}
		for i, m := range msgs {
			if cur[i] == nil {
				continue
			}
			logEverywhere(bt, *broadcast[m.ChatID], herald.Update{Kind: herald.UpdEditMessage, ChatID: m.ChatID, Seq: m.Seq, ActorID: m.SenderID, Message: cur[i], At: at}, &ups)
		}
		return classify("postgres.Reseal", bt.run(ctx, t))
	})
	return ups, err
}

// SetChatTTL implements store.Store.
func (db *DB) SetChatTTL(ctx context.Context, chatID int64, ttl time.Duration) error {
	return db.do(ctx, rowLocks(chatID), func(ctx context.Context, t *tx) error { return dialect.SetChatTTL(ctx, shim{t}, chatID, ttl) })
}
