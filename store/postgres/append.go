package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
)

// appendReq is one AppendMessage in the writer's queue: what was asked
// and, once its op is done, what was stored. Both paths fill it: the
// batch's grouped append (appendGroup) or the op's own fn.
type appendReq struct {
	in      herald.Message
	m       herald.Message
	ups     []herald.Update
	dup     bool
	grouped bool // stored by appendGroup
	solo    bool // appendGroup failed with it once: run it one at a time
}

// groupable says whether appendGroup may store r. A bot's extras need the
// seq before their own statement, so they take the one-at-a-time path.
func (r *appendReq) groupable() bool { return !r.solo && len(r.in.Extra) == 0 }

// groupMaxMembers bounds the chats whose members' pts the group assigns
// here: a larger chat's fan-out stays one statement in the database
// (appendSQL), rather than thousands of array elements sent there.
const groupMaxMembers = 256

// The statements of a grouped append. The chats and users rows they write
// were locked (lockChatsSQL, lockUsersSQL) by this transaction before it
// read their counters, so the seqs and pts assigned from those reads are
// the next ones on every node, and no other transaction moves them until
// this one commits.
const (
	// groupChatsSQL reads the counters of the batch's locked chats.
	groupChatsSQL = `SELECT id, last_seq, pts, broadcast, member_count FROM chats WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	// groupMembersSQL reads the members of the small chats the group fans
	// out to, with their pts; broadcast chats have no per-member log.
	// lockUsersSQL locked these users already, as members of chats the
	// batch writes; the lock here is a no-op then, and keeps the pts read
	// the one this transaction will move even if it were not.
	groupMembersSQL = `SELECT m.chat_id, m.user_id, u.pts FROM members m JOIN chats c ON c.id = m.chat_id JOIN users u ON u.id = m.user_id
		WHERE m.chat_id = ANY($1) AND c.broadcast = 0 AND c.member_count <= $2 ORDER BY m.chat_id, m.user_id FOR NO KEY UPDATE OF u`
	// groupDupsSQL finds sends already stored with the same random id.
	groupDupsSQL = `SELECT ` + sqlstore.MessageCols + ` FROM messages
		WHERE (chat_id, sender_id, random_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])) AND random_id <> 0`

	// groupWriteSQL is every write of a grouped append in one statement,
	// each WITH clause a different table (as CockroachDB also requires):
	// the messages, the members' log rows and their pts, the broadcast
	// chats' log rows, the chats' last seq and pts, the senders' read
	// positions, and the files the messages attach. An empty array writes
	// nothing.
	groupWriteSQL = `WITH
	ms AS (INSERT INTO messages (` + sqlstore.MessageCols + `)
		SELECT c, s, snd, r, b, rt, fu, fc, fs, sa, 0, 0, 0, ttl, ea, w, su, sv, f, sg
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[], $6::bigint[], $7::bigint[], $8::bigint[],
			$9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::integer[], $14::bigint[], $15::integer[], $16::text[], $17::integer[])
		AS t(c, s, snd, r, b, rt, fu, fc, fs, sa, ttl, ea, w, su, sv, f, sg)),
	lg AS (INSERT INTO updates (user_id, pts, kind, chat_id, seq, actor_id, seqs, at)
		SELECT u, p, $18::integer, c, s, a, '', t
		FROM unnest($19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[]) AS x(u, p, c, s, a, t)),
	us AS (UPDATE users SET pts = x.p FROM unnest($25::bigint[], $26::bigint[]) AS x(id, p) WHERE users.id = x.id),
	cl AS (INSERT INTO chat_updates (chat_id, pts, kind, seq, seqs, actor_id, at)
		SELECT c, p, $18::integer, s, '', a, t
		FROM unnest($27::bigint[], $28::bigint[], $29::bigint[], $30::bigint[], $31::bigint[]) AS x(c, p, s, a, t)),
	ch AS (UPDATE chats SET last_seq = x.s, last_at = x.t, pts = x.p
		FROM unnest($32::bigint[], $33::bigint[], $34::bigint[], $35::bigint[]) AS x(id, s, t, p) WHERE chats.id = x.id),
	rd AS (UPDATE members SET read_seq = x.s FROM unnest($36::bigint[], $37::bigint[], $38::bigint[]) AS x(c, u, s)
		WHERE members.chat_id = x.c AND members.user_id = x.u AND members.read_seq < x.s)
	UPDATE files SET attached = 1 WHERE id = ANY($39::text[]) AND attached = 0`
)

type groupChat struct {
	lastSeq, pts, lastAt int64
	broadcast, small     bool
	members              []int64
	touched              bool
}

type dupKey struct{ chat, sender, random int64 }

// appendGroup stores the batch's plain appends with four statements, in
// one round trip of their own for all of them (the write rides with the
// transaction's next statement), instead of one round trip and a
// savepoint each: their counters are read once, right after the batch's
// locks were taken, assigned here, and every table is written by one
// statement (groupWriteSQL). It runs first in the transaction, outside any savepoint
// (so the rows it locked and updates make no MultiXact); what can still
// refuse an append (no such chat, a send already stored) is found by the
// reads before anything is written, and those ops are left to their own
// fn. If a write fails all the same, the caller rolls the transaction
// back and runs the batch again without grouping them (groupFailed).
//
// It returns the indexes in ops of the appends it stored (their
// appendReq holds the outcome).
func appendGroup(ctx context.Context, t *tx, ops []*op) ([]int, error) {
	var cand []int
	var dups []dupKey
	seen := map[dupKey]bool{}
	var want []int64
	for i, o := range ops {
		r := o.app
		if r == nil || !r.groupable() || o.ctx.Err() != nil {
			continue
		}
		if r.in.RandomID != 0 {
			k := dupKey{r.in.ChatID, r.in.SenderID, r.in.RandomID}
			if seen[k] {
				// A retry racing its original: stored after it, on its
				// own, it finds the original.
				continue
			}
			seen[k] = true
			dups = append(dups, k)
		}
		cand = append(cand, i)
		want = append(want, r.in.ChatID)
	}
	if len(cand) < 2 {
		// One append alone is cheaper on its own path: its check and
		// appendSQL go in one round trip with the locks.
		return nil, nil
	}
	slices.Sort(want)
	want = slices.Compact(want)

	// One round trip: counters, members and duplicates, read under the
	// locks the pending statements take first.
	gc := map[int64]*groupChat{}
	pts := map[int64]int64{}
	prev := map[dupKey]herald.Message{}
	b := &pgx.Batch{}
	b.Queue(groupChatsSQL, want)
	b.Queue(groupMembersSQL, want, groupMaxMembers)
	if len(dups) > 0 {
		cs, ss, rs := make([]int64, len(dups)), make([]int64, len(dups)), make([]int64, len(dups))
		for i, k := range dups {
			cs[i], ss[i], rs[i] = k.chat, k.sender, k.random
		}
		b.Queue(groupDupsSQL, cs, ss, rs)
	}
	br := t.send(ctx, b)
	err := func() error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, count int64
			var bc int
			c := &groupChat{}
			if err := rows.Scan(&id, &c.lastSeq, &c.pts, &bc, &count); err != nil {
				rows.Close()
				return err
			}
			c.broadcast, c.small = bc != 0, count <= groupMaxMembers
			gc[id] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if rows, err = br.Query(); err != nil {
			return err
		}
		for rows.Next() {
			var c, u, p int64
			if err := rows.Scan(&c, &u, &p); err != nil {
				rows.Close()
				return err
			}
			pts[u] = p
			if ch := gc[c]; ch != nil {
				ch.members = append(ch.members, u)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(dups) > 0 {
			if rows, err = br.Query(); err != nil {
				return err
			}
			for rows.Next() {
				m, err := sqlstore.ScanMessage(rows)
				if err != nil {
					rows.Close()
					return err
				}
				prev[dupKey{m.ChatID, m.SenderID, m.RandomID}] = m
			}
			rows.Close()
			return rows.Err()
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.check(err)
	if err != nil {
		return nil, err
	}

	// Assign seqs and pts, in the batch's order.
	var (
		done                                  []int
		mChat, mSeq, mSender, mRandom         []int64
		mBody                                 [][]byte
		mReply, mFu, mFc, mFs, mSent, mTTL    []int64
		mExp, mSealed                         []int64
		mWaiting, mService, mSigned           []int32
		mFile, files                          []string
		uUser, uPts, uChat, uSeq, uActor, uAt []int64
		cChat, cPts, cSeq, cActor, cAt        []int64
		movedUsers                            = map[int64]bool{}
		reads                                 = map[[2]int64]int64{}
	)
	for _, i := range cand {
		r := ops[i].app
		m := r.in
		c := gc[m.ChatID]
		if c == nil || (!c.broadcast && !c.small) {
			continue // no such chat (its fn says so), or a large one
		}
		if m.RandomID != 0 {
			if p, ok := prev[dupKey{m.ChatID, m.SenderID, m.RandomID}]; ok {
				r.m, r.ups, r.dup, r.grouped = p, nil, true, true
				done = append(done, i)
				continue
			}
		}
		sent := sqlstore.Millis(m.SentAt)
		c.lastSeq++
		c.lastAt = sent
		c.touched = true
		m.Seq = c.lastSeq
		var fu, fc, fs int64
		if m.Fwd != nil {
			fu, fc, fs = m.Fwd.UserID, m.Fwd.ChatID, m.Fwd.Seq
		}
		mChat, mSeq, mSender, mRandom = append(mChat, m.ChatID), append(mSeq, m.Seq), append(mSender, m.SenderID), append(mRandom, m.RandomID)
		mBody, mReply = append(mBody, m.Body), append(mReply, m.ReplyTo)
		mFu, mFc, mFs, mSent = append(mFu, fu), append(mFc, fc), append(mFs, fs), append(mSent, sent)
		mTTL, mExp, mSealed = append(mTTL, m.TTL.Milliseconds()), append(mExp, sqlstore.Millis(m.ExpiresAt)), append(mSealed, sqlstore.Millis(m.SealedUntil))
		mWaiting, mService, mSigned = append(mWaiting, int32(sqlstore.Flag(m.Waiting))), append(mService, int32(sqlstore.Flag(m.Service))), append(mSigned, int32(sqlstore.Flag(m.Signed)))
		f := sqlstore.FileID(m)
		mFile = append(mFile, f)
		if f != "" {
			files = append(files, f)
		}
		k := [2]int64{m.ChatID, m.SenderID}
		reads[k] = max(reads[k], m.Seq)

		msg := m
		tmpl := herald.Update{Kind: herald.UpdNewMessage, ChatID: m.ChatID, Seq: m.Seq, ActorID: m.SenderID, Message: &msg, At: m.SentAt}
		var ups []herald.Update
		if c.broadcast {
			c.pts++
			tmpl.Pts = c.pts
			ups = []herald.Update{tmpl}
			cChat, cPts, cSeq, cActor, cAt = append(cChat, m.ChatID), append(cPts, c.pts), append(cSeq, m.Seq), append(cActor, m.SenderID), append(cAt, sent)
		} else {
			ups = make([]herald.Update, 0, len(c.members))
			for _, u := range c.members { // ascending, as the log rows were
				pts[u]++
				movedUsers[u] = true
				up := tmpl
				up.UserID, up.Pts = u, pts[u]
				ups = append(ups, up)
				uUser, uPts, uChat, uSeq, uActor, uAt = append(uUser, u), append(uPts, pts[u]), append(uChat, m.ChatID), append(uSeq, m.Seq), append(uActor, m.SenderID), append(uAt, sent)
			}
		}
		r.m, r.ups, r.dup, r.grouped = m, ups, false, true
		done = append(done, i)
	}
	if len(mChat) == 0 {
		return done, nil
	}

	// Every table once, in one statement. It is not sent yet: it goes
	// with the transaction's next statement, the COMMIT if the batch had
	// nothing else, so it costs no round trip of its own. If it fails,
	// the caller learns it there (groupFailed).
	var userIDs, userPts []int64
	for u := range movedUsers {
		userIDs = append(userIDs, u)
	}
	slices.Sort(userIDs)
	for _, u := range userIDs {
		userPts = append(userPts, pts[u])
	}
	var ids, seqs, ats, cps []int64
	for _, id := range want {
		if c := gc[id]; c != nil && c.touched {
			ids, seqs, ats, cps = append(ids, id), append(seqs, c.lastSeq), append(ats, c.lastAt), append(cps, c.pts)
		}
	}
	rc, ru, rs := make([]int64, 0, len(reads)), make([]int64, 0, len(reads)), make([]int64, 0, len(reads))
	for k, s := range reads {
		rc, ru, rs = append(rc, k[0]), append(ru, k[1]), append(rs, s)
	}
	t.queue(groupWriteSQL,
		mChat, mSeq, mSender, mRandom, mBody, mReply, mFu, mFc, mFs, mSent, mTTL, mExp, mWaiting, mSealed, mService, mFile, mSigned,
		int32(herald.UpdNewMessage), uUser, uPts, uChat, uSeq, uActor, uAt,
		userIDs, userPts,
		cChat, cPts, cSeq, cActor, cAt,
		ids, seqs, ats, cps,
		rc, ru, rs,
		files)
	// In the order of the batch, as the one-at-a-time path answers.
	slices.SortFunc(done, cmp.Compare[int])
	return done, nil
}
