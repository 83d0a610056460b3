package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
)

// appendReq is one AppendMessage in the writer's queue: what was asked
// and, once its op is done, what was stored.
type appendReq struct {
	in  herald.Message
	m   herald.Message
	ups []herald.Update
	dup bool
}

// batchable says whether the writer may store r together with the other
// appends of its batch (appendGroup). A file or a bot's extras takes the
// one-at-a-time path, which also writes those.
func (r *appendReq) batchable() bool {
	return r.in.File == nil && len(r.in.Extra) == 0
}

// appendGroup stores a run of consecutive appends of one batch with a few
// statements for all of them instead of about eleven each: the
// duplicates, chats, members and pts it needs are read once, seqs and pts
// are assigned here (the single writer is the only one assigning them),
// and each table gets one multi-row statement. Every op was validated by
// the service before it was queued, and what can still refuse one (no
// such chat, a duplicate) is found by the reads, before anything is
// written: so no op needs its own savepoint. The group has one, in case a
// statement fails all the same; then the caller runs every op of the
// group again, each in its own savepoint.
//
// It returns each op's error, and which ops it left for the caller to run
// one at a time (broadcast chats, files, extras, repeats of a random id
// within the group).
func (db *DB) appendGroup(ctx context.Context, tx querier, first bool, ops []*op, errs []error, single []bool) error {
	g := appendScratch.Get().(*groupScratch)
	defer appendScratch.Put(g)
	g.reset()

	// Which ops this group stores, and the keys it must read.
	for i, o := range ops {
		errs[i], single[i] = nil, false
		r := o.app
		if o.ctx.Err() != nil {
			errs[i] = herald.Errorf(herald.Unavailable, "the request was cancelled before it was stored")
			continue
		}
		if !r.batchable() {
			single[i] = true
			continue
		}
		if r.in.RandomID != 0 {
			k := dupKey{r.in.ChatID, r.in.SenderID, r.in.RandomID}
			if _, ok := g.seen[k]; ok {
				// A retry racing its original: stored after it, one at
				// a time, it finds the original.
				single[i] = true
				continue
			}
			g.seen[k] = struct{}{}
		}
		if _, ok := g.chats[r.in.ChatID]; !ok {
			g.chats[r.in.ChatID] = &groupChat{}
			g.chatIDs = append(g.chatIDs, r.in.ChatID)
		}
	}

	// Duplicates: a send already stored is answered with what was stored.
	// One statement for the group's random ids, not one per send: each
	// statement costs more in SQLite's VM than the lookup it does.
	g.dupOps = g.dupOps[:0]
	for i, o := range ops {
		if errs[i] == nil && !single[i] && o.app.in.RandomID != 0 {
			g.dupOps = append(g.dupOps, i)
		}
	}
	if err := g.findSent(ctx, tx, ops); err != nil {
		return err
	}

	// The chats: their last seq, whether they are broadcast, their
	// members and those members' pts; from what the writer knows, else
	// read.
	if len(g.chatIDs) == 0 {
		return nil
	}
	ws := &db.ws
	var missing []int64
	for _, id := range g.chatIDs {
		if k, ok := ws.chats[id]; ok {
			*g.chats[id] = groupChat{found: true, broadcast: k.broadcast, lastSeq: k.lastSeq, members: k.members}
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		if err := g.queryIDs(ctx, tx, `SELECT id, last_seq, broadcast FROM chats WHERE id IN `, ``, missing, func(scan func(...any) error) error {
			var id, last int64
			var bc bool
			if err := scan(&id, &last, &bc); err != nil {
				return err
			}
			c := g.chats[id]
			c.found, c.lastSeq, c.broadcast = true, last, bc
			return nil
		}); err != nil {
			return err
		}
	}
	var logged []int64 // chats whose member lists are read
	for _, id := range missing {
		if c := g.chats[id]; c.found && !c.broadcast {
			logged = append(logged, id)
		}
	}
	if len(logged) > 0 {
		if err := g.queryIDs(ctx, tx, `SELECT chat_id, user_id FROM members WHERE chat_id IN `, ` ORDER BY chat_id, user_id`, logged, func(scan func(...any) error) error {
			var chat, user int64
			if err := scan(&chat, &user); err != nil {
				return err
			}
			c := g.chats[chat]
			c.members = append(c.members, user)
			return nil
		}); err != nil {
			return err
		}
	}
	var unknown []int64
	for _, id := range g.chatIDs {
		c := g.chats[id]
		if !c.found || c.broadcast {
			continue
		}
		for _, u := range c.members {
			if _, ok := g.pts[u]; ok {
				continue
			}
			if p, ok := ws.pts[u]; ok {
				g.pts[u] = p
			} else {
				g.pts[u] = 0
				unknown = append(unknown, u)
			}
			g.userIDs = append(g.userIDs, u)
		}
	}
	if len(unknown) > 0 {
		if err := g.queryIDs(ctx, tx, `SELECT id, pts FROM users WHERE id IN `, ``, unknown, func(scan func(...any) error) error {
			var id, pts int64
			if err := scan(&id, &pts); err != nil {
				return err
			}
			g.pts[id] = pts
			return nil
		}); err != nil {
			return err
		}
	}

	// Numbering, in queue order: the same seqs and pts the one-at-a-time
	// path would give.
	for i, o := range ops {
		r := o.app
		if errs[i] != nil || single[i] || g.done[i] {
			continue
		}
		c := g.chats[r.in.ChatID]
		switch {
		case !c.found:
			errs[i] = herald.Errorf(herald.NotFound, "no chat %d", r.in.ChatID)
			continue
		case c.broadcast:
			single[i] = true
			continue
		}
		c.lastSeq++
		c.touched, c.lastAt = true, sqlstore.Millis(r.in.SentAt)
		r.m, r.dup = r.in, false
		r.m.Seq = c.lastSeq
		g.msgs = append(g.msgs, &r.m)
		g.reads = append(g.reads, readPos{r.m.ChatID, r.m.SenderID, r.m.Seq})
		msg := r.m
		r.ups = make([]herald.Update, 0, len(c.members))
		for _, uid := range c.members {
			g.pts[uid]++
			g.ptsTouched[uid] = true
			r.ups = append(r.ups, herald.Update{
				UserID: uid, Pts: g.pts[uid], Kind: herald.UpdNewMessage, ChatID: r.m.ChatID, Seq: r.m.Seq,
				ActorID: r.m.SenderID, Message: &msg, At: r.m.SentAt,
			})
		}
		g.ups = append(g.ups, r.ups...)
	}
	if len(g.msgs) == 0 {
		return nil
	}

	// The writes: one statement per table (per chunk of rows). When the
	// group is the transaction's first write, a failed statement may
	// take the whole transaction back (OR ROLLBACK), which the caller
	// begins again: then SQLite keeps no statement journal, a copy of
	// every page each multi-row statement changes.
	or := ""
	if first {
		or = "OR ROLLBACK "
	}
	if err := insertRows(ctx, tx, `INSERT `+or+`INTO messages (`+sqlstore.MessageCols+`) VALUES `, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, '', ?)", len(g.msgs), func(i int, args []any) []any {
		m := g.msgs[i]
		var fu, fc, fs int64
		if m.Fwd != nil {
			fu, fc, fs = m.Fwd.UserID, m.Fwd.ChatID, m.Fwd.Seq
		}
		return append(args, m.ChatID, m.Seq, m.SenderID, m.RandomID, m.Body, m.ReplyTo, fu, fc, fs, sqlstore.Millis(m.SentAt),
			m.TTL.Milliseconds(), sqlstore.Millis(m.ExpiresAt), sqlstore.Flag(m.Waiting), sqlstore.Millis(m.SealedUntil), sqlstore.Flag(m.Service), sqlstore.Flag(m.Signed))
	}); err != nil {
		return err
	}
	if err := insertRows(ctx, tx, `INSERT `+or+`INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at) VALUES `, "(?, ?, ?, ?, ?, ?, '', ?)", len(g.ups), func(i int, args []any) []any {
		u := &g.ups[i]
		return append(args, u.UserID, u.Pts, int(u.Kind), u.ChatID, u.Seq, u.ActorID, sqlstore.Millis(u.At))
	}); err != nil {
		return err
	}
	for _, id := range g.chatIDs {
		if c := g.chats[id]; c.touched {
			g.chatRows = append(g.chatRows, id, c.lastSeq, c.lastAt)
			db.wChats = append(db.wChats, chatSeq{id, c.lastSeq})
		}
	}
	if err := updateRows(ctx, tx, `UPDATE `+or+`chats SET last_seq = v.s, last_at = v.a FROM v WHERE chats.id = v.id`, "v(id, s, a)", 3, g.chatRows); err != nil {
		return err
	}
	for _, id := range g.userIDs {
		if g.ptsTouched[id] {
			g.userRows = append(g.userRows, id, g.pts[id])
		}
	}
	if err := updateRows(ctx, tx, `UPDATE `+or+`users SET pts = v.p FROM v WHERE users.id = v.id`, "v(id, p)", 2, g.userRows); err != nil {
		return err
	}
	// Sending means having read everything before it: the sender's read
	// position moves to their last message in each chat.
	last := map[[2]int64]int64{}
	for _, p := range g.reads {
		k := [2]int64{p.chat, p.user}
		if _, ok := last[k]; !ok {
			g.readRows = append(g.readRows, p.chat, p.user, 0)
		}
		last[k] = p.seq
	}
	for i := 0; i < len(g.readRows); i += 3 {
		p := readPos{g.readRows[i].(int64), g.readRows[i+1].(int64), last[[2]int64{g.readRows[i].(int64), g.readRows[i+1].(int64)}]}
		g.readRows[i+2] = p.seq
		db.wReads = append(db.wReads, p)
	}
	if err := updateRows(ctx, tx, `UPDATE `+or+`members SET read_seq = v.s FROM v WHERE members.chat_id = v.c AND members.user_id = v.u AND members.read_seq < v.s`, "v(c, u, s)", 3, g.readRows); err != nil {
		return err
	}
	// What this group read and wrote, for the next: exact as long as
	// nothing else writes (commit forgets it otherwise).
	if len(ws.chats)+len(ws.pts) > writerStateMax {
		ws.forget()
	}
	if ws.chats == nil {
		ws.chats, ws.pts = map[int64]writerChat{}, map[int64]int64{}
	}
	for _, id := range g.chatIDs {
		if c := g.chats[id]; c.found {
			ws.chats[id] = writerChat{lastSeq: c.lastSeq, broadcast: c.broadcast, members: c.members}
		}
	}
	for _, u := range g.userIDs {
		ws.pts[u] = g.pts[u]
	}
	return nil
}

// writerState is what the writer knows of the rows grouped appends read:
// chats (last seq, broadcast, member ids) and users' pts. It is exact
// while only grouped appends commit, since the writer assigns those
// numbers itself; any other write, or a rollback, forgets it.
type writerState struct {
	chats map[int64]writerChat
	pts   map[int64]int64
}

type writerChat struct {
	lastSeq   int64
	broadcast bool
	members   []int64 // user id order; never changed in place
}

// writerStateMax bounds the writer's memory: past it, it starts over.
const writerStateMax = 200_000

func (w *writerState) forget() { w.chats, w.pts = nil, nil }

type dupKey struct{ chat, sender, random int64 }

type readPos struct{ chat, user, seq int64 }

type groupChat struct {
	found, broadcast, touched bool
	lastSeq, lastAt           int64
	members                   []int64 // in user id order, as the one-at-a-time path logs them
}

// groupScratch is appendGroup's working memory, reused across batches.
type groupScratch struct {
	seen       map[dupKey]struct{}
	dupOps     []int                     // ops with a random id to look up
	sent       map[dupKey]herald.Message // what findSent found stored
	done       map[int]bool
	chats      map[int64]*groupChat
	chatIDs    []int64
	pts        map[int64]int64
	ptsTouched map[int64]bool
	userIDs    []int64
	msgs       []*herald.Message
	ups        []herald.Update
	reads      []readPos
	chatRows   []any
	userRows   []any
	readRows   []any
	args       []any
}

var appendScratch = sync.Pool{New: func() any {
	return &groupScratch{
		seen: map[dupKey]struct{}{}, sent: map[dupKey]herald.Message{}, done: map[int]bool{}, chats: map[int64]*groupChat{},
		pts: map[int64]int64{}, ptsTouched: map[int64]bool{},
	}
}}

func (g *groupScratch) reset() {
	clear(g.seen)
	clear(g.sent)
	clear(g.done)
	clear(g.chats)
	clear(g.pts)
	clear(g.ptsTouched)
	g.chatIDs, g.userIDs, g.msgs, g.reads = g.chatIDs[:0], g.userIDs[:0], g.msgs[:0], g.reads[:0]
	clear(g.ups) // they point at messages the callers now own
	g.ups = g.ups[:0]
	g.chatRows, g.userRows, g.readRows = g.chatRows[:0], g.userRows[:0], g.readRows[:0]
}

// queryIDs runs head + "(?, …)" + tail for ids, in IN lists padded to a
// power of two (repeating the last id), so that only a few distinct
// statements are ever prepared; each row goes to row.
func (g *groupScratch) queryIDs(ctx context.Context, tx querier, head, tail string, ids []int64, row func(scan func(...any) error) error) error {
	for len(ids) > 0 {
		n := min(len(ids), maxChunk)
		size := chunkSize(n)
		g.args = g.args[:0]
		for i := range size {
			g.args = append(g.args, ids[min(i, n-1)])
		}
		rows, err := tx.QueryContext(ctx, head+tuples("?", size)+tail, g.args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := row(rows.Scan); err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// sentBefore finds sends already stored, given (chat, sender, random id)
// triples as a VALUES list (columns named apart from messages', so the
// select list needs no prefix): the join from the list drives SQLite to the
// partial index on random ids, one lookup per triple (a row-value IN
// would scan the index).
const sentBefore = `WITH v(c, s, r) AS (VALUES %s) SELECT ` + sqlstore.MessageCols +
	` FROM v CROSS JOIN messages m WHERE m.chat_id = v.c AND m.sender_id = v.s AND m.random_id = v.r AND m.random_id <> 0`

// findSent looks the random ids of g.dupOps up, in chunks padded to a
// power of two like queryIDs, and marks each op whose send is already
// stored as done, answered with the stored message.
func (g *groupScratch) findSent(ctx context.Context, tx querier, ops []*op) error {
	ids := g.dupOps
	for len(ids) > 0 {
		n := min(len(ids), maxChunk)
		size := chunkSize(n)
		g.args = g.args[:0]
		for i := range size {
			in := &ops[ids[min(i, n-1)]].app.in
			g.args = append(g.args, in.ChatID, in.SenderID, in.RandomID)
		}
		rows, err := tx.QueryContext(ctx, sentBeforeQuery(size), g.args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			m, err := sqlstore.ScanMessage(rows)
			if err != nil {
				rows.Close()
				return err
			}
			g.sent[dupKey{m.ChatID, m.SenderID, m.RandomID}] = m
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, i := range ids[:n] {
			r := ops[i].app
			if prev, ok := g.sent[dupKey{r.in.ChatID, r.in.SenderID, r.in.RandomID}]; ok {
				r.m, r.ups, r.dup = prev, nil, true
				g.done[i] = true
			}
		}
		ids = ids[n:]
	}
	return nil
}

var sentBeforeCache sync.Map // n → query

// sentBeforeQuery is sentBefore for n triples.
func sentBeforeQuery(n int) string {
	if q, ok := sentBeforeCache.Load(n); ok {
		return q.(string)
	}
	q := fmt.Sprintf(sentBefore, strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", "))
	sentBeforeCache.Store(n, q)
	return q
}

// maxChunk bounds the rows of one statement (and so the distinct
// statements prepared: sizes 1, 2, 4 … maxChunk).
const maxChunk = 64

// chunkSize is the power of two at or above n.
func chunkSize(n int) int {
	s := 1
	for s < n {
		s <<= 1
	}
	return s
}

var placeholderCache sync.Map // "tuple/n" → string

// tuples is n copies of tuple, comma separated, in parentheses when
// tuple is a single "?".
func tuples(tuple string, n int) string {
	key := tuple + "/" + strconv.Itoa(n)
	if s, ok := placeholderCache.Load(key); ok {
		return s.(string)
	}
	var b strings.Builder
	single := tuple == "?"
	if single {
		b.WriteByte('(')
	}
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	if single {
		b.WriteByte(')')
	}
	s := b.String()
	placeholderCache.Store(key, s)
	return s
}

// insertRows inserts n rows, row i's values appended by add, in chunks of
// powers of two (every row exactly once).
func insertRows(ctx context.Context, tx querier, head, tuple string, n int, add func(i int, args []any) []any) error {
	var args []any
	for i := 0; i < n; {
		size := maxChunk
		for size > n-i {
			size >>= 1
		}
		args = args[:0]
		for j := i; j < i+size; j++ {
			args = add(j, args)
		}
		if _, err := tx.ExecContext(ctx, head+tuples(tuple, size), args...); err != nil {
			return err
		}
		i += size
	}
	return nil
}

// updateRows runs "WITH cte AS (VALUES …) update" for rows of width
// values each, padded to a power of two by repeating the last row (an
// UPDATE … FROM applies a repeated identical row once).
func updateRows(ctx context.Context, tx querier, update, cte string, width int, rows []any) error {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", width), ", ") + ")"
	for len(rows) > 0 {
		n := min(len(rows)/width, maxChunk)
		size := chunkSize(n)
		args := make([]any, 0, size*width)
		args = append(args, rows[:n*width]...)
		for range size - n {
			args = append(args, rows[(n-1)*width:n*width]...)
		}
		if _, err := tx.ExecContext(ctx, "WITH "+cte+" AS (VALUES "+tuples(tuple, size)+") "+update, args...); err != nil {
			return err
		}
		rows = rows[n*width:]
	}
	return nil
}
