package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/internal/pgtest"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/postgres"
	"github.com/heraldim/herald/store/storetest"
	"github.com/jackc/pgx/v5"
)

func open(tb testing.TB, dsn string, opts postgres.Options) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), dsn, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return db
}

func TestStore(t *testing.T) {
	pgtest.DSN(t) // one skip or failure here rather than one per subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.Schema(t), postgres.Options{})
	})
}

// TestStoreTransactionPerWrite runs the suite with four writers committing
// one write per transaction: plain concurrent transactions, the other way
// this store can run, must be just as correct.
func TestStoreTransactionPerWrite(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.Schema(t), postgres.Options{Writers: 4, MaxBatch: 1})
	})
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestMigrate(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := t.Context()
	_, err := postgres.Open(ctx, dsn, postgres.Options{NoMigrate: true})
	if !herald.IsKind(err, herald.Unavailable) {
		t.Fatalf("Open(NoMigrate) of an empty schema: err = %v, want Unavailable", err)
	}
	// Several nodes may migrate at once at start-up.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := postgres.Migrate(ctx, dsn); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var versions []int32
	rows, _ := conn.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	// The same versions as SQLite's, so one "heraldd migrate" vocabulary
	// serves both stores.
	var want []int32
	names, _ := filepath.Glob("../sqlite/migrations/*.sql")
	for _, n := range names {
		v, err := strconv.Atoi(strings.SplitN(filepath.Base(n), "_", 2)[0])
		if err != nil {
			t.Fatalf("SQLite migration %s: %v", n, err)
		}
		want = append(want, int32(v))
	}
	if len(want) == 0 || !slices.Equal(versions, want) {
		t.Errorf("schema_migrations = %v, want %v, the versions of store/sqlite/migrations", versions, want)
	}
	db := open(t, dsn, postgres.Options{NoMigrate: true})
	defer db.Close()
	if _, err := db.CreateUser(ctx, herald.User{Username: "alice", CreatedAt: t0}, []byte("h"), ""); err != nil {
		t.Fatalf("CreateUser after Migrate: %v", err)
	}
}

func TestReopen(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := t.Context()
	db := open(t, dsn, postgres.Options{})
	a, _ := db.CreateUser(ctx, herald.User{Username: "alice", CreatedAt: t0}, []byte("h"), "")
	b, _ := db.CreateUser(ctx, herald.User{Username: "bobby", CreatedAt: t0}, []byte("h"), "")
	c, _, err := db.DirectChat(ctx, a.ID, b.ID, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, RandomID: 7, Body: []byte{0, 1}, SentAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dsn, postgres.Options{})
	defer db.Close()
	m, _, dup, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, RandomID: 7, Body: []byte("retry"), SentAt: t0})
	if err != nil || !dup || m.Seq != 1 || !bytes.Equal(m.Body, []byte{0, 1}) {
		t.Errorf("retry after reopening = seq %d %x, dup %v, %v; want seq 1, dup", m.Seq, m.Body, dup, err)
	}
	m, _, _, err = db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: b.ID, Body: []byte("next"), SentAt: t0})
	if err != nil || m.Seq != 2 {
		t.Errorf("AppendMessage after reopening = seq %d, %v; want 2", m.Seq, err)
	}
}

func TestGroupCommit(t *testing.T) {
	db := open(t, pgtest.Schema(t), postgres.Options{})
	defer db.Close()
	ctx := t.Context()
	var ids []int64
	for i := range 3 {
		u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	c, _, err := db.CreateGroup(ctx, herald.Chat{Title: "g", CreatedBy: ids[0], CreatedAt: t0}, ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	before := db.Stats()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: ids[i%3], Body: []byte("x"), SentAt: t0}); err != nil {
				t.Errorf("AppendMessage: %v", err)
			}
		})
	}
	wg.Wait()
	after := db.Stats()
	writes, commits := after.Writes-before.Writes, after.Commits-before.Commits
	if writes != n {
		t.Errorf("Stats: %d writes, want %d", writes, n)
	}
	if commits < 1 || commits > writes {
		t.Errorf("Stats: %d commits for %d writes, want between 1 and %d", commits, writes, writes)
	}
	t.Logf("%d writes in %d commits", writes, commits)
}

// TestTwoNodes runs two stores on one database, as two heraldd nodes do,
// sending into the same chats at once: seqs and every member's pts stay
// gap-free and nothing is stored twice, whatever the interleaving.
func TestTwoNodes(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := t.Context()
	n1 := open(t, dsn, postgres.Options{})
	defer n1.Close()
	n2 := open(t, dsn, postgres.Options{Writers: 2, MaxBatch: 8})
	defer n2.Close()
	nodes := []*postgres.DB{n1, n2}
	var ids []int64
	for i := range 6 {
		u, err := n1.CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d", i), CreatedAt: t0}, []byte("h"), "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	// Overlapping chats: everyone's pts is shared by several of them.
	g, _, err := n1.CreateGroup(ctx, herald.Chat{Title: "g", CreatedBy: ids[0], CreatedAt: t0}, ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	chats := []int64{g.ID}
	var dcs sync.Map // pair → chat id, from whichever node answered
	var wg sync.WaitGroup
	for i := range 5 {
		for j := i + 1; j < 6; j++ {
			for k := range 2 {
				wg.Go(func() {
					c, _, err := nodes[k].DirectChat(ctx, ids[i], ids[j], true, t0)
					if err != nil {
						t.Errorf("DirectChat: %v", err)
						return
					}
					if prev, loaded := dcs.LoadOrStore([2]int{i, j}, c.ID); loaded && prev.(int64) != c.ID {
						t.Errorf("two direct chats for one pair: %d and %d", prev, c.ID)
					}
				})
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	dcs.Range(func(_, v any) bool { chats = append(chats, v.(int64)); return true })

	const perChat = 20
	var sent atomic.Int64
	for _, chat := range chats {
		ms, err := n1.Members(ctx, chat)
		if err != nil {
			t.Fatal(err)
		}
		for i := range perChat {
			wg.Go(func() {
				sender := ms[i%len(ms)].UserID
				// Every send is tried on both nodes with the same random
				// id, as a client retrying through another node would.
				var seqs [2]int64
				var inner sync.WaitGroup
				for k := range 2 {
					inner.Go(func() {
						m, _, dup, err := nodes[k].AppendMessage(ctx, herald.Message{ChatID: chat, SenderID: sender, RandomID: int64(i + 1), Body: []byte("x"), SentAt: t0})
						if err != nil {
							t.Errorf("AppendMessage: %v", err)
							return
						}
						seqs[k] = m.Seq
						if !dup {
							sent.Add(1)
						}
					})
				}
				inner.Wait()
				if seqs[0] != seqs[1] {
					t.Errorf("chat %d: one send stored as seqs %v", chat, seqs)
				}
			})
		}
	}
	wg.Wait()
	if got, want := sent.Load(), int64(len(chats)*perChat); got != want {
		t.Errorf("%d sends stored, want %d (each once)", got, want)
	}
	for _, chat := range chats {
		c, err := n2.Chat(ctx, chat)
		if err != nil || c.LastSeq != perChat {
			t.Errorf("chat %d: LastSeq %d, %v; want %d", chat, c.LastSeq, err, perChat)
		}
	}
	for _, id := range ids {
		pts, err := n2.Pts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		d, err := n1.Difference(ctx, id, 0, int(pts)+1)
		if err != nil {
			t.Fatal(err)
		}
		for i, u := range d.Updates {
			if u.Pts != int64(i+1) {
				t.Fatalf("user %d: update %d has pts %d: the log has a gap", id, i, u.Pts)
			}
		}
		// 1 group join + 5 direct-chat joins + 20 posts per chat.
		if want := int64(1 + 5 + 6*perChat); int64(len(d.Updates)) != want || pts != want {
			t.Errorf("user %d: %d updates, pts %d; want %d", id, len(d.Updates), pts, want)
		}
	}
	for i, n := range nodes {
		// Every transaction takes its contended locks in one order, so
		// none deadlocked and had to run again.
		st := n.Stats()
		t.Logf("node %d: %+v", i+1, st)
		if st.Retries != 0 {
			t.Errorf("node %d ran %d writes again after conflicts; the lock order should leave none", i+1, st.Retries)
		}
	}
}

// BenchmarkAppendMessageParallel measures many goroutines sending into many
// direct chats at once, as store/sqlite's benchmark of the same name does,
// so the two can be compared.
func BenchmarkAppendMessageParallel(b *testing.B) {
	for _, senders := range []int{32, 512} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) { benchAppendParallel(b, senders, postgres.Options{}) })
	}
	// The alternative the package documentation weighs: a transaction per
	// write on several connections, relying on PostgreSQL's own sharing of
	// WAL flushes between concurrent commits.
	for _, senders := range []int{32, 512} {
		b.Run(fmt.Sprintf("senders=%d/txPerWrite", senders), func(b *testing.B) {
			benchAppendParallel(b, senders, postgres.Options{Writers: 16, MaxBatch: 1})
		})
	}
}

func benchAppendParallel(b *testing.B, senders int, opts postgres.Options) {
	benchOn(b, open(b, pgtest.Schema(b), opts), senders)
}

func benchOn(b *testing.B, db *postgres.DB, senders int) {
	defer db.Close()
	ctx := context.Background()
	const chats = 64
	type pair struct{ chat, sender int64 }
	pairs := make([]pair, chats)
	for i := range pairs {
		var us [2]herald.User
		for k := range us {
			u, err := db.CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d_%d", i, k), CreatedAt: t0}, []byte("h"), "")
			if err != nil {
				b.Fatal(err)
			}
			us[k] = u
		}
		c, _, err := db.DirectChat(ctx, us[0].ID, us[1].ID, true, t0)
		if err != nil {
			b.Fatal(err)
		}
		pairs[i] = pair{c.ID, us[0].ID}
	}
	body := bytes.Repeat([]byte{0xab}, 200)
	var next, sent atomic.Int64
	b.SetParallelism(max(1, senders/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := pairs[int(next.Add(1))%len(pairs)]
		for pb.Next() {
			if _, _, _, err := db.AppendMessage(ctx, herald.Message{ChatID: p.chat, SenderID: p.sender, Body: body, SentAt: t0}); err != nil {
				b.Error(err)
				return
			}
			sent.Add(1)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(sent.Load())/b.Elapsed().Seconds(), "msgs/s")
}

// TestConnectionsLost cuts every connection the store has, as a
// PostgreSQL restart or a failover does: writes run again on new
// connections, and the store recovers without being reopened.
func TestConnectionsLost(t *testing.T) {
	dsn := pgtest.Schema(t)
	u, _ := url.Parse(dsn)
	q := u.Query()
	app := "herald_test_" + q.Get("search_path")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	ctx := t.Context()
	db := open(t, u.String(), postgres.Options{})
	defer db.Close()
	a, err := db.CreateUser(ctx, herald.User{Username: "alice", CreatedAt: t0}, []byte("h"), "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := db.CreateUser(ctx, herald.User{Username: "bobby", CreatedAt: t0}, []byte("h"), "")
	c, _, err := db.DirectChat(ctx, a.ID, b.ID, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) k`, app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no connection of the store was found to cut")
	}
	m, ups, _, err := db.AppendMessage(ctx, herald.Message{ChatID: c.ID, SenderID: a.ID, Body: []byte("after"), SentAt: t0})
	if err != nil || m.Seq != 1 || len(ups) != 2 {
		t.Fatalf("AppendMessage after losing the connections = seq %d, %d updates, %v; want seq 1 stored", m.Seq, len(ups), err)
	}
	// A read may fail once, with Unavailable, on a connection that died
	// idle; the next one gets a new connection.
	var pts int64
	for i := range 3 {
		pts, err = db.Pts(ctx, b.ID)
		if err == nil {
			break
		}
		if !herald.IsKind(err, herald.Unavailable) || i == 2 {
			t.Fatalf("Pts after losing the connections: %v", err)
		}
	}
	if pts != 2 {
		t.Errorf("Pts = %d, want 2", pts)
	}
	if st := db.Stats(); st.Retries == 0 {
		t.Logf("the write did not need to run again (%+v): the pool replaced the dead connection first", st)
	}
}

// TestUnreachable: with no server to talk to, the store says Unavailable.
func TestUnreachable(t *testing.T) {
	pgtest.DSN(t)
	_, err := postgres.Open(t.Context(), "postgres://herald@127.0.0.1:1/herald_test?sslmode=disable&connect_timeout=2", postgres.Options{})
	if !herald.IsKind(err, herald.Unavailable) {
		t.Errorf("Open of an unreachable server: err = %v, want Unavailable", err)
	}
}

// TestAuditLogIsAppendOnly: the database itself refuses to change or
// remove an audit entry, whoever asks.
func TestAuditLogIsAppendOnly(t *testing.T) {
	dsn := pgtest.Schema(t)
	ctx := t.Context()
	db := open(t, dsn, postgres.Options{})
	defer db.Close()
	for _, a := range []string{"takedown", "restore"} {
		if err := db.AppendAudit(ctx, herald.AuditEntry{At: t0, Operator: "console", Action: a, Target: "@c", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`UPDATE audit SET reason = 'nothing happened'`, `DELETE FROM audit`, `TRUNCATE audit`} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s succeeded on the append-only audit log", q)
		}
	}
	if es, err := db.Audit(ctx, 10); err != nil || len(es) != 2 || es[0].Action != "restore" || es[1].Reason != "r" {
		t.Fatalf("audit = %v, %v; want both entries unchanged", es, err)
	}
}

// BenchmarkAppendMessageTwoNodes is two nodes' stores on one database,
// each pair's two members sending through different ones, as the
// two-node direct scenario in docs/BENCHMARKS.md does: how much the two
// writers wait for each other's row locks.
func BenchmarkAppendMessageTwoNodes(b *testing.B) {
	dsn := pgtest.Schema(b)
	dbs := []*postgres.DB{open(b, dsn, postgres.Options{}), open(b, dsn, postgres.Options{})}
	defer dbs[0].Close()
	defer dbs[1].Close()
	ctx := context.Background()
	const chats = 64
	type sender struct {
		db         *postgres.DB
		chat, user int64
	}
	var senders []sender
	for i := range chats {
		var us [2]herald.User
		for k := range us {
			u, err := dbs[0].CreateUser(ctx, herald.User{Username: fmt.Sprintf("user%d_%d", i, k), CreatedAt: t0}, []byte("h"), "")
			if err != nil {
				b.Fatal(err)
			}
			us[k] = u
		}
		c, _, err := dbs[0].DirectChat(ctx, us[0].ID, us[1].ID, true, t0)
		if err != nil {
			b.Fatal(err)
		}
		senders = append(senders, sender{dbs[0], c.ID, us[0].ID}, sender{dbs[1], c.ID, us[1].ID})
	}
	body := bytes.Repeat([]byte{0xab}, 200)
	var next, sent atomic.Int64
	before := dbs[0].Stats().Retries + dbs[1].Stats().Retries
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := senders[int(next.Add(1))%len(senders)]
		for pb.Next() {
			if _, _, _, err := s.db.AppendMessage(ctx, herald.Message{ChatID: s.chat, SenderID: s.user, Body: body, SentAt: t0}); err != nil {
				b.Error(err)
				return
			}
			sent.Add(1)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(sent.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(dbs[0].Stats().Retries+dbs[1].Stats().Retries-before)/float64(max(1, sent.Load())), "retries/msg")
}
