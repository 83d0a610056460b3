package postgres

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

// logUpdate queues the append of u to its user's log, where it gets the
// user's next pts; u, with its pts, is appended to *out when the batch
// runs. One statement: the counter and the log row move together.
func logUpdate(b *batch, u herald.Update, out *[]herald.Update) {
	b.row(func(r pgx.Row) error {
		if err := r.Scan(&u.Pts); err != nil {
			return err
		}
		*out = append(*out, u)
		return nil
	}, `WITH u AS (UPDATE users SET pts = pts + 1 WHERE id = ? RETURNING id, pts)
		INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at)
		SELECT id, pts, ?::integer, ?::bigint, ?::bigint, ?::bigint, ?::text, ?::bigint FROM u
		RETURNING pts`,
		u.UserID, int(u.Kind), u.ChatID, u.Seq, u.ActorID, sqlstore.EncodeSeqs(u.Seqs), sqlstore.Millis(u.At))
}

// logForMembers queues the append of a copy of tmpl to the log of every
// member of chatID, in one statement however many members there are. The
// member one.UserID, if one is not nil, gets one's Kind, Seq and ActorID
// instead of tmpl's (the newcomer of a join, the reader of a read). The
// updates are appended to *out in member id order.
func logForMembers(b *batch, chatID int64, tmpl herald.Update, one *herald.Update, out *[]herald.Update) {
	special := herald.Update{Kind: tmpl.Kind, Seq: tmpl.Seq, ActorID: tmpl.ActorID}
	if one != nil {
		special = *one
	}
	var got []herald.Update
	b.rows(func(r pgx.Rows) error {
		u := tmpl
		if err := r.Scan(&u.UserID, &u.Pts); err != nil {
			return err
		}
		if u.UserID == special.UserID {
			u.Kind, u.Seq, u.ActorID = special.Kind, special.Seq, special.ActorID
		}
		got = append(got, u)
		return nil
	}, `WITH u AS (UPDATE users SET pts = pts + 1 WHERE id IN (SELECT user_id FROM members WHERE chat_id = ?) RETURNING id, pts)
		INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at)
		SELECT id, pts,
			CASE WHEN id = ? THEN ?::integer ELSE ?::integer END,
			?::bigint,
			CASE WHEN id = ? THEN ?::bigint ELSE ?::bigint END,
			CASE WHEN id = ? THEN ?::bigint ELSE ?::bigint END,
			?::text, ?::bigint
		FROM u
		RETURNING user_id, pts`,
		chatID,
		special.UserID, int(special.Kind), int(tmpl.Kind),
		tmpl.ChatID,
		special.UserID, special.Seq, tmpl.Seq,
		special.UserID, special.ActorID, tmpl.ActorID,
		sqlstore.EncodeSeqs(tmpl.Seqs), sqlstore.Millis(tmpl.At))
	b.then(func() error {
		sort.Slice(got, func(i, j int) bool { return got[i].UserID < got[j].UserID })
		*out = append(*out, got...)
		return nil
	})
}

// logForOthers queues the append of a copy of tmpl to the log of every
// member of chatID except those in except, in one statement; the updates
// are appended to *out in member id order.
func logForOthers(b *batch, chatID int64, tmpl herald.Update, except []int64, out *[]herald.Update) {
	var got []herald.Update
	b.rows(func(r pgx.Rows) error {
		u := tmpl
		if err := r.Scan(&u.UserID, &u.Pts); err != nil {
			return err
		}
		got = append(got, u)
		return nil
	}, `WITH u AS (UPDATE users SET pts = pts + 1
			WHERE id IN (SELECT user_id FROM members WHERE chat_id = ? AND NOT (user_id = ANY (?::bigint[])))
			RETURNING id, pts)
		INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at)
		SELECT id, pts, ?::integer, ?::bigint, ?::bigint, ?::bigint, ?::text, ?::bigint FROM u
		RETURNING user_id, pts`,
		chatID, except, int(tmpl.Kind), tmpl.ChatID, tmpl.Seq, tmpl.ActorID, sqlstore.EncodeSeqs(tmpl.Seqs), sqlstore.Millis(tmpl.At))
	b.then(func() error {
		sort.Slice(got, func(i, j int) bool { return got[i].UserID < got[j].UserID })
		*out = append(*out, got...)
		return nil
	})
}

// logChat queues the append of u to a broadcast chat's own log, where it
// gets the chat's next pts.
func logChat(b *batch, u herald.Update, out *[]herald.Update) {
	u.UserID = 0
	b.row(func(r pgx.Row) error {
		if err := r.Scan(&u.Pts); err != nil {
			return err
		}
		*out = append(*out, u)
		return nil
	}, `WITH c AS (UPDATE chats SET pts = pts + 1 WHERE id = ? RETURNING id, pts)
		INSERT INTO chat_updates (chat_id, pts, kind, seq, seqs, actor_id, at)
		SELECT id, pts, ?::integer, ?::bigint, ?::text, ?::bigint, ?::bigint FROM c
		RETURNING pts`,
		u.ChatID, int(u.Kind), u.Seq, sqlstore.EncodeSeqs(u.Seqs), u.ActorID, sqlstore.Millis(u.At))
}

// logEverywhere queues an update that every member must see: once in the
// chat's log if it is broadcast, else in each member's log.
func logEverywhere(b *batch, broadcast bool, tmpl herald.Update, out *[]herald.Update) {
	if broadcast {
		logChat(b, tmpl, out)
		return
	}
	logForMembers(b, tmpl.ChatID, tmpl, nil, out)
}

// isBroadcast queues the read of whether chatID fans out on read.
func isBroadcast(b *batch, chatID int64, broadcast *bool) {
	b.row(func(r pgx.Row) error {
		var v int
		err := r.Scan(&v)
		*broadcast = v != 0
		return err
	}, sqlstore.ChatBroadcast, chatID)
}

// chatByID reads a chat inside the writer's transaction or on the read pool.
func chatByID(ctx context.Context, q querier, id int64) (herald.Chat, error) {
	return dialect.ChatByID(ctx, shim{q}, id)
}

// queueChat queues the read of chat id into c.
func queueChat(b *batch, id int64, c *herald.Chat) {
	b.row(func(r pgx.Row) error {
		got, err := sqlstore.ScanChat(r)
		if noRows(err) {
			return herald.Errorf(herald.NotFound, "no chat %d", id)
		}
		*c = got
		return err
	}, sqlstore.ChatRow, id)
}

// addMember queues the insert of a membership; *added is 1 if it is new.
// The chat's member_count is the caller's to move.
func addMember(b *batch, chatID, userID int64, role herald.Role, at time.Time, added *int64) {
	b.execN(added, sqlstore.InsertMember, chatID, userID, int(role), sqlstore.Millis(at), chatID)
}

// recountMembers queues setting a new chat's member_count from its rows;
// only for chats just made, whose members are few.
func recountMembers(b *batch, chatID int64) {
	b.exec(`UPDATE chats SET member_count = (SELECT count(*) FROM members WHERE chat_id = ?) WHERE id = ?`, chatID, chatID)
}

// DirectChat implements store.Store.
func (db *DB) DirectChat(ctx context.Context, a, b int64, create bool, at time.Time) (herald.Chat, []herald.Update, error) {
	lo, hi := min(a, b), max(a, b)
	find := func(ctx context.Context, q querier) (herald.Chat, error) {
		var id int64
		err := q.queryRow(ctx, sqlstore.DirectChatID, lo, hi).Scan(&id)
		if noRows(err) {
			return herald.Chat{}, herald.Errorf(herald.NotFound, "no direct chat with this user")
		}
		if err != nil {
			return herald.Chat{}, classify("postgres.DirectChat", err)
		}
		return chatByID(ctx, q, id)
	}
	c, err := find(ctx, db.rq)
	if err == nil || !create || !herald.IsKind(err, herald.NotFound) {
		return c, nil, err
	}
	var ups []herald.Update
	// The writer locks both users before this runs; so a concurrent
	// DirectChat for the same pair, on this node or another, waits until
	// this one commits, then looks again and finds the chat.
	err = db.do(ctx, locks{users: []int64{lo, hi}}, func(ctx context.Context, t *tx) error {
		ups = nil
		var ferr error
		if c, ferr = find(ctx, t); ferr == nil || !herald.IsKind(ferr, herald.NotFound) {
			return ferr
		}
		c = herald.Chat{Kind: herald.Direct, CreatedBy: a, CreatedAt: at}
		if err := dialect.InsertChat(ctx, shim{t}, &c); err != nil {
			return err
		}
		bt := &batch{}
		bt.exec(sqlstore.InsertDirectChat, lo, hi, c.ID)
		var added int64
		addMember(bt, c.ID, lo, herald.RoleMember, at, &added)
		if lo != hi { // else a chat with oneself ("saved messages")
			addMember(bt, c.ID, hi, herald.RoleMember, at, &added)
		}
		recountMembers(bt, c.ID)
		logForMembers(bt, c.ID, herald.Update{Kind: herald.UpdChatJoined, ChatID: c.ID, ActorID: a, At: at}, nil, &ups)
		queueChat(bt, c.ID, &c)
		return classify("postgres.DirectChat", bt.run(ctx, t))
	})
	return c, ups, err
}

// CreateGroup implements store.Store.
func (db *DB) CreateGroup(ctx context.Context, c herald.Chat, members []int64) (herald.Chat, []herald.Update, error) {
	var ups []herald.Update
	var out herald.Chat
	err := db.do(ctx, locks{users: append([]int64{c.CreatedBy}, members...)}, func(ctx context.Context, t *tx) error {
		ups = nil
		g := c
		g.Kind = herald.Group
		if err := dialect.InsertChat(ctx, shim{t}, &g); err != nil {
			return err
		}
		bt := &batch{}
		var added int64
		addMember(bt, g.ID, g.CreatedBy, herald.RoleOwner, g.CreatedAt, &added)
		for _, m := range members {
			addMember(bt, g.ID, m, herald.RoleMember, g.CreatedAt, &added)
		}
		recountMembers(bt, g.ID)
		logForMembers(bt, g.ID, herald.Update{Kind: herald.UpdChatJoined, ChatID: g.ID, ActorID: g.CreatedBy, At: g.CreatedAt}, nil, &ups)
		queueChat(bt, g.ID, &out)
		return classify("postgres.CreateGroup", bt.run(ctx, t))
	})
	if err != nil {
		return c, nil, err
	}
	return out, ups, nil
}

// AddMembers implements store.Store.
func (db *DB) AddMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, role herald.Role, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	lk := chatLocks(chatID)
	lk.users = userIDs
	err := db.do(ctx, lk, func(ctx context.Context, t *tx) error {
		ups = nil
		ch, err := chatByID(ctx, t, chatID)
		if err != nil {
			return err
		}
		bt := &batch{}
		added := make([]int64, len(userIDs))
		for i, id := range userIDs {
			addMember(bt, chatID, id, role, at, &added[i])
		}
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.AddMembers", err)
		}
		// A user listed twice is inserted once: the second insert finds
		// the first and adds nothing.
		var newIDs []int64
		for i, id := range userIDs {
			if added[i] == 1 {
				newIDs = append(newIDs, id)
			}
		}
		if len(newIDs) == 0 {
			return nil
		}
		bt = &batch{}
		bt.exec(sqlstore.AddMemberCount, len(newIDs), chatID)
		for _, id := range newIDs {
			// The newcomer's devices learn, with the log position to
			// follow the chat from if it is broadcast.
			u := herald.Update{UserID: id, Kind: herald.UpdChatJoined, ChatID: chatID, ActorID: actorID, At: at}
			if ch.Broadcast {
				u.Seq = ch.Pts
			}
			logUpdate(bt, u, &ups)
		}
		if !ch.Broadcast {
			// Every member from before hears of the whole call once: a
			// cost of newcomers plus members, not newcomers times members.
			logForOthers(bt, chatID, herald.Update{Kind: herald.UpdMembers, ChatID: chatID, Seq: 1, ActorID: newIDs[0], Seqs: newIDs, At: at}, newIDs, &ups)
		}
		return classify("postgres.AddMembers", bt.run(ctx, t))
	})
	return ups, err
}

// RemoveMembers implements store.Store.
func (db *DB) RemoveMembers(ctx context.Context, chatID, actorID int64, userIDs []int64, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	var gone []int64
	for _, id := range userIDs {
		if !slices.Contains(gone, id) {
			gone = append(gone, id)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		broadcast := make([]int, len(gone))
		deleted := make([]int64, len(gone))
		bt := &batch{}
		// If a user was no member, the error takes the whole call back.
		for i, id := range gone {
			bt.row(func(r pgx.Row) error {
				if err := r.Scan(&broadcast[i]); !noRows(err) {
					return err
				}
				return nil
			}, sqlstore.RemoveMemberCount, chatID)
			bt.execN(&deleted[i], sqlstore.DeleteMember, chatID, id)
		}
		if err := bt.run(ctx, t); err != nil {
			return classify("postgres.RemoveMembers", err)
		}
		if slices.Contains(deleted, 0) {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		bt = &batch{}
		for _, id := range gone {
			logUpdate(bt, herald.Update{UserID: id, Kind: herald.UpdChatLeft, ChatID: chatID, ActorID: actorID, At: at}, &ups)
		}
		if broadcast[0] == 0 {
			logForMembers(bt, chatID, herald.Update{Kind: herald.UpdMembers, ChatID: chatID, ActorID: gone[0], Seqs: gone, At: at}, nil, &ups)
		}
		return classify("postgres.RemoveMembers", bt.run(ctx, t))
	})
	return ups, err
}

// Dialogs implements store.Store.
func (db *DB) Dialogs(ctx context.Context, userID int64, after herald.DialogCursor, limit int) ([]herald.Dialog, error) {
	out, err := db.DialogChats(ctx, userID, after, limit)
	if err != nil {
		return nil, err
	}
	// What each line needs besides the chat, for every line in one round
	// trip rather than three or four per chat.
	b := &batch{}
	lasts := make([][]herald.Message, len(out))
	peers := make([]int64, len(out))
	for i := range out {
		d := &out[i]
		queueHistory(b, userID, d.Chat.ID, 0, 1, &lasts[i])
		b.row(func(r pgx.Row) error { return r.Scan(&d.Unread) }, sqlstore.DialogUnread, d.Chat.ID, d.ReadSeq, userID, userID, d.Chat.ID)
		if d.Chat.Broadcast {
			continue // no read receipts between members, and no member scan
		}
		b.row(func(r pgx.Row) error { return r.Scan(&d.PeerReadSeq) }, sqlstore.DialogPeerRead, d.Chat.ID, userID)
		if d.Chat.Kind == herald.Direct {
			b.row(func(r pgx.Row) error { return r.Scan(&peers[i]) }, sqlstore.DialogPeer, userID, d.Chat.ID)
		}
	}
	if err := b.run(ctx, db.rq); err != nil {
		return nil, classify("postgres.Dialogs", err)
	}
	var peerIDs []int64
	for i := range out {
		if len(lasts[i]) > 0 {
			out[i].Last = &lasts[i][0]
		}
		if out[i].Chat.Kind == herald.Direct && !out[i].Chat.Broadcast {
			out[i].Peer = &herald.User{ID: peers[i]}
			peerIDs = append(peerIDs, peers[i])
		}
	}
	us, err := users(ctx, db.rq, peerIDs)
	if err != nil {
		return nil, err
	}
	sqlstore.FinishDialogs(out, us)
	return out, nil
}

// SetRole implements store.Store.
func (db *DB) SetRole(ctx context.Context, chatID, actorID, userID int64, role herald.Role, at time.Time) ([]herald.Update, error) {
	var ups []herald.Update
	err := db.do(ctx, chatLocks(chatID), func(ctx context.Context, t *tx) error {
		ups = nil
		var n int64
		var broadcast bool
		bt := &batch{}
		bt.execN(&n, sqlstore.SetMemberRole, int(role), chatID, userID)
		isBroadcast(bt, chatID, &broadcast)
		err := bt.run(ctx, t)
		if n == 0 && (err == nil || noRows(err)) {
			return herald.Errorf(herald.NotFound, "not a member of chat %d", chatID)
		}
		if err != nil {
			return classify("postgres.SetRole", err)
		}
		tmpl := herald.Update{Kind: herald.UpdMembers, ChatID: chatID, Seq: 2, ActorID: userID, At: at}
		bt = &batch{}
		if broadcast {
			tmpl.UserID = userID
			logUpdate(bt, tmpl, &ups)
		} else {
			logForMembers(bt, chatID, tmpl, nil, &ups)
		}
		return classify("postgres.SetRole", bt.run(ctx, t))
	})
	return ups, err
}
