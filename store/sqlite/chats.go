package sqlite

import (
	"context"
	"slices"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// logUpdate appends u to its user's log, giving it the next pts.
func logUpdate(ctx context.Context, tx querier, u *herald.Update) error {
	if err := tx.QueryRowContext(ctx, `UPDATE users SET pts = pts + 1 WHERE id = ? RETURNING pts`, u.UserID).Scan(&u.Pts); err != nil {
		return classify("sqlite.logUpdate", err)
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.UserID, u.Pts, int(u.Kind), u.ChatID, u.Seq, u.ActorID, sqlstore.EncodeSeqs(u.Seqs), sqlstore.Millis(u.At))
	return classify("sqlite.logUpdate", err)
}

// logForMembers appends a copy of tmpl to the log of every member of
// chatID, with fix applied per member when it is not nil.
func logForMembers(ctx context.Context, tx querier, chatID int64, tmpl herald.Update, fix func(*herald.Update)) ([]herald.Update, error) {
	ids, err := memberIDs(ctx, tx, chatID)
	if err != nil {
		return nil, err
	}
	out := make([]herald.Update, 0, len(ids))
	for _, id := range ids {
		u := tmpl
		u.UserID = id
		if fix != nil {
			fix(&u)
		}
		if err := logUpdate(ctx, tx, &u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func memberIDs(ctx context.Context, q querier, chatID int64) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT user_id FROM members WHERE chat_id = ? ORDER BY user_id`, chatID)
	if err != nil {
		return nil, classify("sqlite.members", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("sqlite.members", err)
		}
		ids = append(ids, id)
	}
	return ids, classify("sqlite.members", rows.Err())
}

// chatByID reads a chat inside the writer's transaction or on the read pool.
func chatByID(ctx context.Context, q querier, id int64) (herald.Chat, error) {
	return dialect.ChatByID(ctx, shim{q}, id)
}

// logChat appends u to a broadcast chat's own log, giving it the chat's
// next pts.
func logChat(ctx context.Context, tx querier, u *herald.Update) error {
	u.UserID = 0
	if err := tx.QueryRowContext(ctx, `UPDATE chats SET pts = pts + 1 WHERE id = ? RETURNING pts`, u.ChatID).Scan(&u.Pts); err != nil {
		return classify("sqlite.logChat", err)
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO chat_updates (chat_id, pts, kind, seq, seqs, actor_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ChatID, u.Pts, int(u.Kind), u.Seq, sqlstore.EncodeSeqs(u.Seqs), u.ActorID, sqlstore.Millis(u.At))
	return classify("sqlite.logChat", err)
}

// addMember inserts a membership and reports whether it is new.
func addMember(ctx context.Context, tx querier, chatID, userID int64, role herald.Role, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, sqlstore.InsertMember, chatID, userID, int(role), sqlstore.Millis(at), chatID)
	if err != nil {
		return false, classify("sqlite.addMember", err)
	}
	n, _ := res.RowsAffected()
	if n == 1 {
		if _, err := tx.ExecContext(ctx, sqlstore.AddMemberCount, 1, chatID); err != nil {
			return false, classify("sqlite.addMember", err)
		}
	}
	return n == 1, nil
}

// DirectChat implements store.Store.
func (db *DB) DirectChat(ctx context.Context, a, b int64, create bool, at time.Time) (herald.Chat, []herald.Update, error) {
	lo, hi := min(a, b), max(a, b)
	find := func(q querier) (herald.Chat, error) {
		var id int64
		err := q.QueryRowContext(ctx, sqlstore.DirectChatID, lo, hi).Scan(&id)
		if sqlstore.NoRows(err) {
			return herald.Chat{}, herald.Errorf(herald.NotFound, "no direct chat with this user")
		}
		if err != nil {
			return herald.Chat{}, classify("sqlite.DirectChat", err)
		}
		return chatByID(ctx, q, id)
	}
	c, err := find(db.rq)
	if err == nil || !create || !herald.IsKind(err, herald.NotFound) {
		return c, nil, err
	}
	var ups []herald.Update
	err = db.do(ctx, func(tx querier) error {
		// Another writer may have created it since the read above.
		var ferr error
		if c, ferr = find(tx); ferr == nil {
			return nil
		}
		c = herald.Chat{Kind: herald.Direct, CreatedBy: a, CreatedAt: at}
		if err := dialect.InsertChat(ctx, shim{tx}, &c); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, sqlstore.InsertDirectChat, lo, hi, c.ID); err != nil {
			return classify("sqlite.DirectChat", err)
		}
		for _, u := range []int64{lo, hi} {
			if _, err := addMember(ctx, tx, c.ID, u, herald.RoleMember, at); err != nil {
				return err
			}
			if lo == hi {
				break // a chat with oneself ("saved messages")
			}
		}
		var err error
		ups, err = logForMembers(ctx, tx, c.ID, herald.Update{Kind: herald.UpdChatJoined, ChatID: c.ID, ActorID: a, At: at}, nil)
		if err != nil {
			return err
		}
		c, err = chatByID(ctx, tx, c.ID)
		return err
	})
	return c, ups, err
}

// CreateGroup implements store.Store.
func (db *DB) CreateGroup(ctx context.Context, c herald.Chat, members []int64) (herald.Chat, []herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		c.Kind = herald.Group
		if err := dialect.InsertChat(ctx, shim{tx}, &c); err != nil {
			return err
		}
		if _, err := addMember(ctx, tx, c.ID, c.CreatedBy, herald.RoleOwner, c.CreatedAt); err != nil {
			return err
		}
		for _, m := range members {
			if _, err := addMember(ctx, tx, c.ID, m, herald.RoleMember, c.CreatedAt); err != nil {
				return err
			}
		}
		var err error
		ups, err = logForMembers(ctx, tx, c.ID, herald.Update{Kind: herald.UpdChatJoined, ChatID: c.ID, ActorID: c.CreatedBy, At: c.CreatedAt}, nil)
		if err != nil {
			return err
		}
		c, err = chatByID(ctx, tx, c.ID)
		return err
	})
	return c, ups, err
}

// AddMembers implements store.Store.
func (db *DB) AddMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, role herald.Role, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		ch, err := chatByID(ctx, tx, chatID)
		if err != nil {
			return err
		}
		added := map[int64]bool{}
		var newIDs []int64
		for _, id := range userIDs {
			ok, err := addMember(ctx, tx, chatID, id, role, at)
			if err != nil {
				return err
			}
			if ok && !added[id] {
				added[id] = true
				newIDs = append(newIDs, id)
			}
		}
		if len(newIDs) == 0 {
			return nil
		}
		for _, id := range newIDs {
			// The newcomer's devices learn, with the log position to
			// follow the chat from if it is broadcast.
			u := herald.Update{UserID: id, Kind: herald.UpdChatJoined, ChatID: chatID, ActorID: actorID, At: at}
			if ch.Broadcast {
				u.Seq = ch.Pts
			}
			if err := logUpdate(ctx, tx, &u); err != nil {
				return err
			}
			ups = append(ups, u)
		}
		if ch.Broadcast {
			return nil // members of a broadcast chat do not see each other
		}
		// Every member from before hears of the whole call once: a cost of
		// newcomers plus members, not newcomers times members.
		ids, err := memberIDs(ctx, tx, chatID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if added[id] {
				continue
			}
			u := herald.Update{UserID: id, Kind: herald.UpdMembers, ChatID: chatID, Seq: 1, ActorID: newIDs[0], Seqs: newIDs, At: at}
			if err := logUpdate(ctx, tx, &u); err != nil {
				return err
			}
			ups = append(ups, u)
		}
		return nil
	})
	return ups, err
}

// RemoveMembers implements store.Store.
func (db *DB) RemoveMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		ups = nil
		var broadcast bool
		var gone []int64
		for _, id := range userIDs {
			if slices.Contains(gone, id) {
				continue
			}
			res, err := tx.ExecContext(ctx, sqlstore.DeleteMember, chatID, id)
			if err != nil {
				return classify("sqlite.RemoveMembers", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
			}
			if err := tx.QueryRowContext(ctx, sqlstore.RemoveMemberCount, chatID).Scan(&broadcast); err != nil {
				return classify("sqlite.RemoveMembers", err)
			}
			gone = append(gone, id)
		}
		for _, id := range gone {
			left := herald.Update{UserID: id, Kind: herald.UpdChatLeft, ChatID: chatID, ActorID: actorID, At: at}
			if err := logUpdate(ctx, tx, &left); err != nil {
				return err
			}
			ups = append(ups, left)
		}
		if broadcast || len(gone) == 0 {
			return nil
		}
		rest, err := logForMembers(ctx, tx, chatID, herald.Update{Kind: herald.UpdMembers, ChatID: chatID, ActorID: gone[0], Seqs: gone, At: at}, nil)
		ups = append(ups, rest...)
		return err
	})
	return ups, err
}

// Dialogs implements store.Store.
func (db *DB) Dialogs(ctx context.Context, userID int64, after herald.DialogCursor, limit int) ([]herald.Dialog, error) {
	out, err := db.DialogChats(ctx, userID, after, limit)
	if err != nil {
		return nil, err
	}
	var peers []int64
	for i := range out {
		d := &out[i]
		msgs, err := history(ctx, db.rq, userID, d.Chat.ID, 0, 1)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			d.Last = &msgs[0]
		}
		if err := db.rq.QueryRowContext(ctx, sqlstore.DialogUnread, d.Chat.ID, d.ReadSeq, userID, userID, d.Chat.ID).Scan(&d.Unread); err != nil {
			return nil, classify("sqlite.Dialogs", err)
		}
		if d.Chat.Broadcast {
			continue // no read receipts between members, and no member scan
		}
		if err := db.rq.QueryRowContext(ctx, sqlstore.DialogPeerRead, d.Chat.ID, userID).Scan(&d.PeerReadSeq); err != nil {
			return nil, classify("sqlite.Dialogs", err)
		}
		if d.Chat.Kind == herald.Direct {
			var peer int64
			err := db.rq.QueryRowContext(ctx, sqlstore.DialogPeer, userID, d.Chat.ID).Scan(&peer)
			if err != nil {
				return nil, classify("sqlite.Dialogs", err)
			}
			peers = append(peers, peer)
			d.Peer = &herald.User{ID: peer}
		}
	}
	us, err := users(ctx, db.rq, peers)
	if err != nil {
		return nil, err
	}
	sqlstore.FinishDialogs(out, us)
	return out, nil
}

// SetRole implements store.Store.
func (db *DB) SetRole(ctx context.Context, chatID, actorID, userID int64, role herald.Role, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, sqlstore.SetMemberRole, int(role), chatID, userID)
		if err != nil {
			return classify("sqlite.SetRole", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		ch, err := chatByID(ctx, tx, chatID)
		if err != nil {
			return err
		}
		tmpl := herald.Update{Kind: herald.UpdMembers, ChatID: chatID, Seq: 2, ActorID: userID, At: at}
		if ch.Broadcast {
			tmpl.UserID = userID
			if err := logUpdate(ctx, tx, &tmpl); err != nil {
				return err
			}
			ups = []herald.Update{tmpl}
			return nil
		}
		ups, err = logForMembers(ctx, tx, chatID, tmpl, nil)
		return err
	})
	return ups, err
}
