// Package postgres is Herald's store on PostgreSQL, for deployments that
// run several heraldd nodes on one database. It passes store/storetest
// unchanged and answers every method as store/sqlite does (TestSameAsSQLite
// runs one story through both and compares every answer).
//
// # Writes: group commit
//
// Every write method is an op queued to a writer goroutine, which commits
// the ops waiting at that moment in one transaction, each inside its own
// SAVEPOINT so that one failing op does not undo the others: group commit,
// as in store/sqlite. A commit costs an fsync (about 3 ms on this
// project's machines), and PostgreSQL's own sharing of WAL flushes between
// concurrent commits did not make up for it: plain transactions, one per
// write on 16 connections (Options{Writers: 16, MaxBatch: 1}, which is
// just as correct), were two to three times slower here; see
// BenchmarkAppendMessageParallel. More writers per node did not help
// either on two cores: batches that share chats wait for each other's
// commit. Statements are pipelined: BEGIN, SAVEPOINT and RELEASE ride in
// the same round trip as the op's next statement.
//
// The plain appends of a batch (two or more; not a bot's extras) are
// stored together, first in the transaction and without savepoints
// (appendGroup, append.go): one pipeline, sent with the batch's locks,
// reads the chats' counters, the members with their pts and any send
// already stored with the same random id; the writer then assigns seqs
// and pts in queue order and queues one statement that writes every
// table with multi-row clauses (unnest of arrays), which goes with the
// COMMIT. So a batch of appends
// costs two round trips and one fsync, whatever its size. The counters
// are read under this transaction's row locks, never kept between
// transactions, so they are the next ones on every node. A lone append
// is one statement (appendSQL), pipelined with the locks.
//
// The price of savepoints: a row that the batch has locked (below) and a
// savepoint then updates gets a MultiXact, PostgreSQL's record of a lock
// and an update by different (sub)transactions. At thousands of writes a
// second that spends multixact ids quickly, and autovacuum has to freeze
// users and chats more often (autovacuum_multixact_freeze_max_age). A
// batch without savepoints, which on an op's failure rolls back and runs
// the other ops again, measured 10–20% faster and makes none; it was not
// chosen because then one caller whose writes keep failing would make
// every batch it lands in run twice.
//
// # Locks: why this is correct with many writers and nodes
//
// Several heraldd nodes means several writers, so correctness cannot rest
// on there being one. A message takes its seq with UPDATE chats …
// RETURNING and each member's pts with UPDATE users … RETURNING; those row
// locks, held until commit, serialise every transaction that writes the
// same chat or the same user's log, on any node, which keeps both counters
// gap-free. The checks "does it exist yet" (a pair's direct chat, a send
// retried with the same random id) run while holding the locks the answer
// depends on, so a concurrent duplicate waits, then finds the first.
//
// A batch holds the locks of all its ops until it commits, and two
// batches that each hold some rows the other needs would deadlock;
// PostgreSQL breaks a deadlock only after deadlock_timeout (1 s). Measured
// before this rule, two writers fell from thousands of messages a second
// to 36. So every op declares the rows it will contend for (locks: the
// chats it writes, the users whose logs it appends to), and each
// transaction takes all of them before any op runs, chats then users,
// each in ascending id (lockChatsSQL, lockUsersSQL). Every transaction on
// every node takes contended locks in that one order, so they queue but do
// not deadlock. The sweeper learns its chats only as it runs, so it takes
// them in the same order itself, in a transaction of its own.
//
// What is left — a deadlock over rows outside that order (an invite code,
// an @name claimed twice at once), a serialization failure, a connection
// lost before COMMIT — rolls the op back and runs it again in a later
// transaction, up to maxTries times. A connection lost during COMMIT
// leaves its outcome unknown: those callers get Unavailable and retry, and
// a retried send is recognised by its random id.
//
// # Reads
//
// Reads go through a pool of their own, outside the writers' transactions,
// at READ COMMITTED, as store/sqlite's read pool does. Dialogs sends its
// per-chat queries for every chat in one pipeline. The reads of one row
// (a membership, a block, a rate token) and sqlstore's shared reads are
// coalesced (coalesce.go): two goroutines each send every read waiting
// at that moment in one pipeline, so a burst of sends costs a few round
// trips; each statement still reads its own snapshot. Nothing read is
// cached: another node may change it at any time.
//
// # SQL dialect
//
// Queries are written once, in SQL both engines accept, with ?
// placeholders: sql() rewrites them to $1, $2 … once per query text.
// store/internal/sqlstore holds the texts both stores share, the row
// scanners, and the reads and writes whose Go is the same on both; this
// package adapts its read pool and a writer's transaction to
// sqlstore.Querier (shim) and embeds sqlstore.Reads. What stays here is
// what PostgreSQL does differently: the batching writers, the lock order
// and pipelined statements (batch), LEAST for SQLite's scalar min(), = ANY
// of an array instead of generated IN lists (one statement text, one
// prepared plan), SELECT … FOR NO KEY UPDATE and FOR UPDATE SKIP LOCKED,
// and data-modifying WITH clauses where a write and its log entries go in
// one statement. Times are Unix milliseconds in BIGINT and flags 0/1
// INTEGERs, as in SQLite.
//
// # PostgreSQL-compatible distributed databases
//
// The SQL stays within what CockroachDB and YugabyteDB accept where that
// costs little: no advisory locks (concurrent migrators coordinate through
// the primary key of schema_migrations, and work for one node at a time
// through lease rows, nodes.go), no LOCK TABLE, no stored procedures; each
// WITH clause modifies a different table. What would need changing for
// them:
//   - The shared rate buckets are an UNLOGGED table (0010_leases.sql).
//     CockroachDB accepts UNLOGGED and ignores it, so each take becomes a
//     replicated, durable write: correct, but a send then pays for one
//     more consensus round; there the buckets would better live
//     elsewhere.
//   - CockroachDB runs SERIALIZABLE, reports conflicts as 40001 at any
//     statement or at COMMIT, and does not allow ROLLBACK TO SAVEPOINT
//     after one; the writer then runs the whole batch again, correct but
//     wasteful under contention: use a small Options.MaxBatch there.
//   - CockroachDB's identity columns draw from unique_rowid() unless
//     serial_normalization = sql_sequence: ids would not be small and
//     dense (the Bot API expects ids below 2^52).
//   - Schema changes inside a transaction are limited on CockroachDB; the
//     migrations would have to run one statement per transaction.
//   - FOR NO KEY UPDATE is taken as FOR UPDATE by CockroachDB, which is
//     stronger but still correct.
//   - The audit log is kept append-only by a PL/pgSQL trigger
//     (0004_moderation.sql), which CockroachDB has only since 24.3; before
//     that, revoking UPDATE and DELETE on it would have to do.
//
// # Deletion
//
// Checkpoint does nothing: the write-ahead log is the server's, not a file
// beside the database that heraldd could truncate. An UPDATE leaves the
// old row version (with the old body) in the table until VACUUM, and its
// bytes on disk, in WAL and in backups until overwritten. That is the
// operator's to manage; provable deletion on PostgreSQL rests on the key
// ring (bodies of expiring messages are sealed under keys that are
// destroyed), not on overwriting.
package postgres

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune a DB. The zero value gives the defaults.
type Options struct {
	// Writers is how many writer goroutines commit batches concurrently
	// (default 1). Each uses its own connection.
	Writers int
	// MaxBatch bounds how many writes share one transaction (default 64),
	// so one commit never holds callers, or row locks, for long. Each
	// write is a subtransaction (its SAVEPOINT), and past 64 of them in
	// one transaction PostgreSQL's per-backend cache of subtransaction ids
	// overflows, which slows every other session's snapshots. 1 gives a
	// plain transaction per write, without savepoints.
	MaxBatch int
	// ReadConns is the size of the read pool (default max(4, 2×GOMAXPROCS)).
	ReadConns int
	// NoMigrate makes Open refuse a database whose schema is not current
	// instead of migrating it, for deployments that run Migrate on their
	// own (heraldd migrate).
	NoMigrate bool
	// WriteTimeout bounds one batch's transaction (default 30 s). A batch
	// that exceeds it fails with Unavailable and its connection is dropped.
	WriteTimeout time.Duration
}

// maxTries bounds how many times one op runs after deadlocks,
// serialization failures or a lost connection before its caller is told.
const maxTries = 5

// Stats counts what the store did, for tests and metrics.
type Stats struct {
	Commits int64 // transactions committed
	Writes  int64 // write operations committed
	Retries int64 // ops run again after a deadlock, a serialization failure or a lost connection
}

// DB is a Store on a PostgreSQL database.
type DB struct {
	reads // the reads both stores share
	opts  Options
	read  *pgxpool.Pool
	rq    poolQuerier
	write *pgxpool.Pool
	ops   chan *op

	closeMu sync.RWMutex // held for reading while queueing a write, so Close waits for it
	closed  atomic.Bool
	mu      sync.Mutex // guards stats
	stats   Stats
	writers sync.WaitGroup

	rowq       chan job // reads for the coalescers (coalesce.go)
	coalescers sync.WaitGroup
}

var _ store.Store = (*DB)(nil)

// reads names sqlstore.Reads for embedding in DB: its methods are DB's,
// and the field stays unexported.
type reads = sqlstore.Reads

// op is one write method's work. fn runs on a writer's connection inside
// the batch's transaction, with the writer's context: a caller giving up
// must not break a connection that other callers' writes share.
type op struct {
	ctx   context.Context // the caller's: only checked before fn starts
	fn    func(ctx context.Context, t *tx) error
	locks locks
	alone bool       // runs in a transaction of its own, taking its own locks
	app   *appendReq // an AppendMessage, which the batch may store with others (appendGroup)
	done  chan error
	tries int
	err   error // the outcome of the last run, if it failed
}

// locks names the contended rows an op writes, for the writer to lock
// before any op of the batch runs (see the package documentation).
type locks struct {
	chats   []int64 // chats rows
	members []int64 // chats whose members' users rows (fan-out on write) are locked too
	users   []int64 // users rows beyond those members
}

// chatLocks is what a write to a chat that may log to its members locks.
func chatLocks(chatID int64) locks {
	return locks{chats: []int64{chatID}, members: []int64{chatID}}
}

// rowLocks is what a write to a chat's own rows (not its members' logs)
// locks.
func rowLocks(chatID int64) locks { return locks{chats: []int64{chatID}} }

// The statements that lock a batch's rows: chats, then users, each in
// ascending id. Users of broadcast chats are not locked: nothing logs to
// them one by one.
const (
	lockChatsSQL = `SELECT id FROM chats WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	lockUsersSQL = `SELECT id FROM users WHERE id IN (
		SELECT unnest($1::bigint[])
		UNION
		SELECT m.user_id FROM members m JOIN chats c ON c.id = m.chat_id WHERE m.chat_id = ANY($2) AND c.broadcast = 0)
		ORDER BY id FOR NO KEY UPDATE`
)

// lockOrder returns the sorted, distinct ids of a batch's locks.
func lockOrder(ops []*op) (chats, members, users []int64) {
	for _, o := range ops {
		chats = append(chats, o.locks.chats...)
		members = append(members, o.locks.members...)
		users = append(users, o.locks.users...)
	}
	for _, ids := range []*[]int64{&chats, &members, &users} {
		slices.Sort(*ids)
		*ids = slices.Compact(*ids)
	}
	return chats, members, users
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string as libpq takes), applies pending migrations unless
// opts.NoMigrate, and starts the writers.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 64
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, herald.Wrap("postgres.Open", err)
	}
	wcfg := cfg.Copy()
	wcfg.MaxConns = int32(opts.Writers)
	cfg.MaxConns = int32(opts.ReadConns)
	r, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, classify("postgres.Open", err)
	}
	w, err := pgxpool.NewWithConfig(ctx, wcfg)
	if err != nil {
		r.Close()
		return nil, classify("postgres.Open", err)
	}
	db := &DB{opts: opts, read: r, write: w, ops: make(chan *op, 4096), rowq: make(chan job, 4096)}
	db.rq = poolQuerier{db}
	db.reads = sqlstore.NewReads(dialect, shim{db.rq})
	if opts.NoMigrate {
		err = checkSchema(ctx, w)
	} else {
		err = migrate(ctx, w)
	}
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	for range opts.Writers {
		db.writers.Add(1)
		go db.writer()
	}
	for range coalescers {
		db.coalescers.Add(1)
		go db.coalesce()
	}
	return db, nil
}

// Stats returns the store's counters.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.stats
}

// Close waits for queued writes to commit and closes the pools.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed.Load() {
		db.closeMu.Unlock()
		return nil
	}
	db.closed.Store(true)
	close(db.ops)
	close(db.rowq)
	db.closeMu.Unlock()
	db.writers.Wait()
	db.coalescers.Wait()
	db.read.Close()
	db.write.Close()
	return nil
}

// Checkpoint implements store.Store. There is nothing to do: the
// write-ahead log is PostgreSQL's, not a file beside the database that
// heraldd could truncate, and vacuuming is the operator's (see the package
// documentation on deletion).
func (db *DB) Checkpoint(ctx context.Context) error {
	if db.closed.Load() {
		return herald.Errorf(herald.Unavailable, "the server is shutting down")
	}
	return nil
}

// do runs fn in a writer's next transaction and returns once that
// transaction has committed (or fn failed, and only fn's own changes were
// rolled back). fn may run more than once (after a deadlock, say), so it
// must set every result it reports afresh each time; it must not keep t.
func (db *DB) do(ctx context.Context, lk locks, fn func(ctx context.Context, t *tx) error) error {
	return db.queue(&op{ctx: ctx, fn: fn, locks: lk, done: make(chan error, 1)})
}

// doAlone runs fn in a transaction of its own, for a write that learns
// which rows it locks only as it runs; fn must take its locks in the
// order lockChatsSQL and lockUsersSQL take them, before writing.
func (db *DB) doAlone(ctx context.Context, fn func(ctx context.Context, t *tx) error) error {
	return db.queue(&op{ctx: ctx, fn: fn, alone: true, done: make(chan error, 1)})
}

func (db *DB) queue(o *op) error {
	ctx := o.ctx
	db.closeMu.RLock()
	if db.closed.Load() {
		db.closeMu.RUnlock()
		return herald.Errorf(herald.Unavailable, "the server is shutting down")
	}
	select {
	case db.ops <- o:
	case <-ctx.Done():
		db.closeMu.RUnlock()
		return herald.Errorf(herald.Unavailable, "the write was cancelled before it was queued")
	}
	db.closeMu.RUnlock()
	// Wait for the outcome even if ctx ends: once queued, the write may
	// commit, and the caller must not report failure for a stored message.
	return <-o.done
}

func (db *DB) writer() {
	defer db.writers.Done()
	batch := make([]*op, 0, db.opts.MaxBatch)
	var again []*op
	for {
		batch = append(batch[:0], again...)
		again = again[:0]
		if len(batch) == 0 {
			o, ok := <-db.ops
			if !ok {
				return
			}
			batch = append(batch, o)
		}
	fill:
		for len(batch) < db.opts.MaxBatch {
			select {
			case o, ok := <-db.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		// An op that takes its own locks cannot share a transaction whose
		// locks were taken before it ran.
		var rerun []*op
		regular := slices.DeleteFunc(slices.Clone(batch), func(o *op) bool { return o.alone })
		if len(regular) > 0 {
			rerun = append(rerun, db.commit(regular)...)
		}
		for _, o := range batch {
			if o.alone {
				rerun = append(rerun, db.commit([]*op{o})...)
			}
		}
		for _, o := range rerun {
			if o.tries++; o.tries < maxTries {
				again = append(again, o)
				continue
			}
			o.done <- classify("postgres.write", o.err)
		}
		if len(again) > 0 {
			db.mu.Lock()
			db.stats.Retries += int64(len(again))
			db.mu.Unlock()
			// Let the transaction we conflicted with, or the server we
			// lost, get ahead first.
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// outcome of one op in a batch.
const (
	undecided = iota
	succeeded
	failed // done with an error of its own
	rerun  // to run again in the next transaction
)

// commit runs a batch in one transaction and answers every op whose
// outcome is final. It returns the ops that should run again.
func (db *DB) commit(batch []*op) (again []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), db.opts.WriteTimeout)
	defer cancel()
	state := make([]int, len(batch))
	finish := func() []*op {
		for i, o := range batch {
			switch state[i] {
			case rerun:
				again = append(again, o)
			case succeeded:
				o.done <- nil
			default:
				o.done <- o.err
			}
		}
		return again
	}
	// lost settles the batch after its transaction was lost before COMMIT:
	// the server rolled all of it back, so every op may run again, in a
	// new transaction on a new connection.
	lost := func(err error) []*op {
		for i, o := range batch {
			if state[i] != failed {
				state[i], o.err = rerun, err
			}
		}
		return finish()
	}

	pc, err := db.write.Acquire(ctx)
	if err != nil {
		// No connection to be had: the database is down or unreachable,
		// and running again at once would not change that.
		for i, o := range batch {
			state[i], o.err = failed, classify("postgres.write", err)
		}
		return finish()
	}
	defer pc.Release()
	t := &tx{conn: pc.Conn()}
	t.queue("BEGIN")
	// Every row lock that transactions contend for, taken first and in
	// one order (chats, then users, by ascending id) by every transaction
	// of every node: batches wait for each other but never deadlock.
	var live []*op
	for _, o := range batch {
		if o.ctx.Err() == nil {
			live = append(live, o)
		}
	}
	if chats, members, users := lockOrder(live); len(chats)+len(members)+len(users) > 0 {
		if len(chats) > 0 {
			t.queue(lockChatsSQL, chats)
		}
		if len(members)+len(users) > 0 {
			t.queue(lockUsersSQL, users, members)
		}
	}
	ok := 0
	grouped := 0
	// groupFailed settles a transaction in which the grouped appends'
	// reads or writes failed. Not expected (the reads found what could
	// refuse an append), but a write may fail all the same: nothing is
	// committed and nobody answered, so roll back and run the whole batch
	// again at once, with those appends one at a time.
	groupFailed := func() []*op {
		if _, rerr := t.conn.Exec(context.Background(), "ROLLBACK"); rerr != nil {
			t.conn.Close(context.Background())
			return lost(rerr)
		}
		for i, o := range batch {
			state[i] = undecided
			if o.app != nil && o.app.groupable() {
				o.app.solo, o.app.grouped = true, false
			}
		}
		pc.Release()
		return db.commit(batch)
	}
	if slices.ContainsFunc(live, func(o *op) bool { return o.app != nil && o.app.groupable() }) {
		done, err := appendGroup(ctx, t, batch)
		if t.broken == nil && t.conn.IsClosed() {
			t.broken = cmp.Or(err, pgconn.ErrConnClosed)
		}
		if t.broken != nil {
			t.conn.Close(context.Background())
			return lost(t.broken)
		}
		if err != nil {
			return groupFailed()
		}
		for _, i := range done {
			state[i] = succeeded
		}
		ok, grouped = len(done), len(done)
	}
	single := len(batch) == 1 && grouped == 0
	for i, o := range batch {
		if state[i] == succeeded {
			continue // stored by the group
		}
		if o.ctx.Err() != nil {
			state[i], o.err = failed, herald.Errorf(herald.Unavailable, "the request was cancelled before it was stored")
			continue
		}
		if !single {
			t.queue("SAVEPOINT op")
		}
		err := o.fn(ctx, t)
		if t.broken == nil && t.conn.IsClosed() {
			t.broken = cmp.Or(err, pgconn.ErrConnClosed)
		}
		if t.broken != nil {
			if grouped > 0 && !t.conn.IsClosed() && !isConnErr(t.broken) {
				return groupFailed() // its writes went ahead of this op's statements
			}
			// The transaction itself failed (a bookkeeping statement, or
			// the connection): nothing in it will commit.
			t.conn.Close(context.Background())
			return lost(t.broken)
		}
		if err == nil {
			state[i] = succeeded
			ok++
			if !single {
				t.queue("RELEASE SAVEPOINT op")
			}
			continue
		}
		o.err = err
		if retryable(err) {
			state[i] = rerun
		} else {
			state[i] = failed
		}
		if single {
			// No savepoint: the transaction ends here.
			t.conn.Exec(context.Background(), "ROLLBACK")
			return finish()
		}
		if n := len(t.pending); n > 0 && t.pending[n-1].sql == "SAVEPOINT op" {
			// The op sent nothing: there is nothing to undo.
			t.pending = t.pending[:n-1]
			continue
		}
		// Undone at once, not in the next pipeline: pgx prepares a
		// pipeline's new statements before running any of it, and an
		// aborted transaction refuses even that.
		if _, err := t.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op"); err != nil {
			t.conn.Close(context.Background())
			return lost(err)
		}
	}
	if err := t.flush(ctx, "COMMIT"); err != nil {
		if grouped > 0 && t.broken != nil && !t.conn.IsClosed() && !isConnErr(err) {
			// The grouped appends' writes, sent with the COMMIT, failed:
			// the COMMIT was not run.
			return groupFailed()
		}
		if t.conn.IsClosed() || isConnErr(err) {
			// The COMMIT may or may not have reached the server: its
			// outcome is unknown, so no op may run again (it could be
			// stored twice). Callers are told to retry, and a retried
			// send is recognised by its random id.
			for i, o := range batch {
				if state[i] == succeeded {
					state[i], o.err = failed, classify("postgres.commit", err)
				}
			}
			return finish()
		}
		// Refused at COMMIT (a serialization failure on a distributed
		// database, say): nothing was stored.
		t.conn.Exec(context.Background(), "ROLLBACK")
		for i, o := range batch {
			if state[i] == succeeded || state[i] == rerun {
				o.err = classify("postgres.commit", err)
				if retryable(err) {
					state[i] = rerun
				} else {
					state[i] = failed
				}
			}
		}
		return finish()
	}
	db.mu.Lock()
	db.stats.Commits++
	db.stats.Writes += int64(ok)
	db.mu.Unlock()
	return finish()
}

// retryable reports whether err means the op lost a race with another
// transaction, or its connection, and would likely succeed if run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	var he *herald.Error
	if errors.As(err, &he) && he.Err == nil {
		return false // an answer of the op's own, like NotFound
	}
	// Lost before anything was sent, or with the connection: the server
	// rolls back a transaction whose connection goes away.
	return pgconn.SafeToRetry(err) || isConnErr(err)
}

// tx is an op's view of the writer's transaction. Statements the writer
// owes the server (BEGIN, SAVEPOINT, RELEASE) wait in pending and go in
// the same round trip as the op's next statement, so bookkeeping costs no
// round trips of its own.
type tx struct {
	conn    *pgx.Conn
	pending []queued
	broken  error // a pending statement or the connection failed
}

type queued struct {
	sql  string
	args []any
}

// queue adds a statement to send ahead of the op's next one.
func (t *tx) queue(sql string, args ...any) {
	t.pending = append(t.pending, queued{sql, args})
}

// flush sends pending statements followed by last (if not empty).
func (t *tx) flush(ctx context.Context, last string) error {
	b := &pgx.Batch{}
	if last != "" {
		b.Queue(last)
	}
	br := t.send(ctx, b)
	if last != "" {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// send sends pending statements and then b in one round trip. The caller
// reads b's results in order and closes the returned results.
func (t *tx) send(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if len(t.pending) == 0 {
		return t.conn.SendBatch(ctx, b)
	}
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(t.pending)+b.Len())}
	for _, q := range t.pending {
		all.Queue(q.sql, q.args...)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	n := len(t.pending)
	t.pending = t.pending[:0]
	br := t.conn.SendBatch(ctx, all)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			t.broken = err
			return errResults{err}
		}
	}
	return br
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(sql(query), args...)
	br := t.send(ctx, b)
	ct, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.check(err)
	return ct.RowsAffected(), err
}

func (t *tx) query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	if len(t.pending) == 0 {
		rows, err := t.conn.Query(ctx, sql(query), args...)
		t.check(err)
		return rows, err
	}
	b := &pgx.Batch{}
	b.Queue(sql(query), args...)
	br := t.send(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		t.check(err)
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) pgx.Row {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return errRow{err}
	}
	return &firstRow{rows: rows, t: t}
}

// check notes a lost connection: the transaction is gone with it.
func (t *tx) check(err error) {
	if err != nil && t.broken == nil && t.conn.IsClosed() {
		t.broken = err
	}
}

type errResults struct{ err error }

func (e errResults) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errResults) Query() (pgx.Rows, error)         { return nil, e.err }
func (e errResults) QueryRow() pgx.Row                { return errRow(e) }
func (e errResults) Close() error                     { return e.err }
func (e errResults) Tx() pgx.Tx                       { return nil }

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// batchRows closes the batch that its rows came from along with them.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		// Rows.Err reports what went wrong; the batch has no more to say.
		r.br.Close()
	}
}

// firstRow is pgx.Row for rows read through tx.query: ErrNoRows if there
// is none, and the rows are closed after Scan.
type firstRow struct {
	rows pgx.Rows
	t    *tx
}

func (r *firstRow) Scan(dst ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		r.rows.Close()
		if err := r.rows.Err(); err != nil {
			r.t.check(err)
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dst...); err != nil {
		return err
	}
	r.rows.Close()
	err := r.rows.Err()
	r.t.check(err)
	return err
}

// querier is what the helpers shared by reads and writes need: the read
// pool and a writer's transaction both have it.
type querier interface {
	sender
	exec(ctx context.Context, query string, args ...any) (int64, error)
	query(ctx context.Context, query string, args ...any) (pgx.Rows, error)
	queryRow(ctx context.Context, query string, args ...any) pgx.Row
}

// poolQuerier reads through the read pool, refusing once the store is
// closed (a closed pool's own error would not say Unavailable).
type poolQuerier struct{ db *DB }

func (p poolQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if p.db.closed.Load() {
		return 0, errClosed
	}
	ct, err := p.db.read.Exec(ctx, sql(query), args...)
	return ct.RowsAffected(), err
}

func (p poolQuerier) query(ctx context.Context, query string, args ...any) (pgx.Rows, error) {
	if p.db.closed.Load() {
		return nil, errClosed
	}
	return p.db.read.Query(ctx, sql(query), args...)
}

func (p poolQuerier) queryRow(ctx context.Context, query string, args ...any) pgx.Row {
	if p.db.closed.Load() {
		return errRow{errClosed}
	}
	return lazyRow{db: p.db, ctx: ctx, query: sql(query), args: args}
}

var errClosed = herald.Errorf(herald.Unavailable, "the store is closed")

// sqlCache holds each query text rewritten for PostgreSQL.
var sqlCache sync.Map // string → string

// sql rewrites a query written with SQLite's ? placeholders into
// PostgreSQL's $1, $2 …, leaving ? inside quoted literals alone (see
// "SQL dialect" in the package documentation).
func sql(q string) string {
	if v, ok := sqlCache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	quoted := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	s := b.String()
	sqlCache.Store(q, s)
	return s
}

// classify turns driver errors into herald kinds.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var he *herald.Error
	if errors.As(err, &he) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &herald.Error{Kind: herald.NotFound, Op: op, Msg: "not found"}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return &herald.Error{Kind: herald.AlreadyExists, Op: op, Msg: "already exists", Err: err}
		case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", // conflicts that persisted; lock_not_available
			strings.HasPrefix(pe.Code, "08"),  // connection exception
			strings.HasPrefix(pe.Code, "53"),  // insufficient resources: disk full, too many connections
			strings.HasPrefix(pe.Code, "57P"): // the server is shutting down, restarting or starting
			return &herald.Error{Kind: herald.Unavailable, Op: op, Msg: "the database is unavailable", Err: err}
		}
		return herald.Wrap(op, err)
	}
	if isConnErr(err) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "closed pool") {
		return &herald.Error{Kind: herald.Unavailable, Op: op, Msg: "the database is unreachable", Err: err}
	}
	return herald.Wrap(op, err)
}

// isConnErr reports whether err means the connection failed or was never
// made, rather than a statement failing on a working connection.
func isConnErr(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// Migrate applies the migrations that the database at dsn lacks and
// returns. It is safe to run from several nodes at once: each migration
// claims its version in schema_migrations inside its own transaction, so
// the others wait for it and then skip it.
func Migrate(ctx context.Context, dsn string) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return herald.Wrap("postgres.Migrate", err)
	}
	cfg.MaxConns = 1
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return classify("postgres.Migrate", err)
	}
	defer p.Close()
	return migrate(ctx, p)
}

type migration struct {
	version int
	name    string
	body    string
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s has no version number", name)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{v, name, string(body)})
	}
	return out, nil
}

const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`

func migrate(ctx context.Context, p *pgxpool.Pool) error {
	// Two nodes creating the table at once can collide in the catalog;
	// the loser finds it there on the second try.
	if _, err := p.Exec(ctx, createMigrations); err != nil {
		if _, err := p.Exec(ctx, createMigrations); err != nil {
			return classify("postgres.migrate", err)
		}
	}
	ms, err := loadMigrations()
	if err != nil {
		return herald.Wrap("postgres.migrate", err)
	}
	for _, m := range ms {
		if err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			// The claim comes first: a concurrent migrator blocks on this
			// key until we commit, then inserts nothing and skips.
			ct, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING`,
				m.version, time.Now().UnixMilli())
			if err != nil || ct.RowsAffected() == 0 {
				return err
			}
			if _, err := tx.Exec(ctx, m.body); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			return nil
		}); err != nil {
			return classify("postgres.migrate", err)
		}
	}
	return nil
}

// checkSchema reports an error unless every migration has been applied.
func checkSchema(ctx context.Context, p *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return herald.Wrap("postgres.Open", err)
	}
	var n int
	err = p.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ANY($1)`, versions(ms)).Scan(&n)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
			n = 0
		} else {
			return classify("postgres.Open", err)
		}
	}
	if n != len(ms) {
		return herald.Errorf(herald.Unavailable, "the database schema is not current (%d of %d migrations applied): run heraldd migrate", n, len(ms))
	}
	return nil
}

func versions(ms []migration) []int32 {
	out := make([]int32, len(ms))
	for i, m := range ms {
		out[i] = int32(m.version)
	}
	return out
}
