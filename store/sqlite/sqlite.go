// Package sqlite is Herald's embedded store: one SQLite file in WAL mode,
// read through a pool of connections and written through one writer
// goroutine that commits many concurrent writes in one transaction (group
// commit), because SQLite has one writer and a commit costs an fsync.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store"
	"github.com/heraldim/herald/store/internal/sqlstore"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// maxBatch bounds how many writes share a transaction, so one commit never
// holds callers for long.
const maxBatch = 512

// Stats counts what the store did, for tests and metrics.
type Stats struct {
	Commits int64 // transactions committed
	Writes  int64 // write operations committed
}

// DB is a Store on one SQLite file.
type DB struct {
	reads // the reads both stores share
	path  string
	read  *sql.DB
	rq    *stmtCache // prepared statements on the read pool
	write *sql.DB
	ops   chan *op

	closeMu sync.RWMutex // held for reading while queueing a write, so Close waits for it
	closed  bool
	mu      sync.Mutex // guards stats
	stats   Stats
	stopped chan struct{}
	noGroup bool // tests: store every append alone, as a reference
	cache   *cache
	// What the writer's grouped appends changed in the batch being
	// committed, for the cache; the writer goroutine's own.
	wChats []chatSeq
	wReads []readPos
	ws     writerState // the writer goroutine's own
	// dataVersion is the writer connection's last PRAGMA data_version.
	dataVersion int64
}

var _ store.Store = (*DB)(nil)

// reads names sqlstore.Reads for embedding in DB: its methods are DB's,
// and the field stays unexported.
type reads = sqlstore.Reads

type op struct {
	ctx  context.Context
	fn   func(tx querier) error
	done chan error
	// after: run on the writer's connection after the batch commits,
	// outside any transaction (a WAL checkpoint cannot run inside one).
	after bool
	// app: an AppendMessage, which the writer may store together with
	// its neighbours in the batch (appendGroup) instead of running fn.
	app *appendReq
}

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(path string) (*DB, error) {
	dsn := func(extra string) string {
		v := url.Values{}
		for _, p := range []string{
			"journal_mode(WAL)",
			// FULL: a write acknowledged to a client survives power loss,
			// not just a crash; group commit pays for the fsync.
			"synchronous(FULL)",
			"busy_timeout(10000)",
			"foreign_keys(ON)",
			// Deleted content is overwritten, not left in free pages.
			"secure_delete(ON)",
			// Savepoints copy each page they change to a sub-journal, a
			// temporary file unless this says memory: a pwrite per page
			// was a fifth of the server's CPU. Durability is the WAL's.
			"temp_store(MEMORY)",
			// A checkpoint copies each page changed since the last one
			// back into the database file, once however often it
			// changed: the hot pages (each chat's last messages, each
			// member's log) change with every batch, so a longer log
			// copies each of them fewer times per message. 8,000 pages
			// is a 32 MiB log at most; deletes still truncate it at once
			// (Checkpoint), and durability is the WAL's fsync either way.
			"wal_autocheckpoint(8000)",
		} {
			v.Add("_pragma", p)
		}
		if extra != "" {
			v.Add("_pragma", extra)
		}
		return "file:" + path + "?" + v.Encode()
	}
	w, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		return nil, herald.Wrap("sqlite.Open", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn("query_only(ON)"))
	if err != nil {
		w.Close()
		return nil, herald.Wrap("sqlite.Open", err)
	}
	r.SetMaxOpenConns(max(4, 2*runtime.GOMAXPROCS(0)))
	db := &DB{path: path, read: r, rq: &stmtCache{q: r, stmts: map[string]*sql.Stmt{}}, write: w, ops: make(chan *op, 4096), stopped: make(chan struct{}), cache: newCache()}
	db.reads = sqlstore.NewReads(dialect, shim{db.rq})
	if err := db.migrate(); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	go db.writer()
	return db, nil
}

func (db *DB) migrate() error {
	ctx := context.Background()
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return herald.Wrap("sqlite.migrate", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return herald.Wrap("sqlite.migrate", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return herald.Wrap("sqlite.migrate", fmt.Errorf("migration %s has no version number", name))
		}
		var n int
		if err := db.write.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, v).Scan(&n); err != nil {
			return herald.Wrap("sqlite.migrate", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return herald.Wrap("sqlite.migrate", err)
		}
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return herald.Wrap("sqlite.migrate", err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return herald.Wrap("sqlite.migrate", fmt.Errorf("%s: %w", name, err))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return herald.Wrap("sqlite.migrate", err)
		}
		if err := tx.Commit(); err != nil {
			return herald.Wrap("sqlite.migrate", err)
		}
	}
	return nil
}

// Stats returns the store's counters.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.stats
}

// Close waits for queued writes to commit and closes the database.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return nil
	}
	db.closed = true
	close(db.ops)
	db.closeMu.Unlock()
	<-db.stopped
	db.rq.close()
	err := db.read.Close()
	if e := db.write.Close(); err == nil {
		err = e
	}
	return err
}

// do runs fn in the writer's next transaction and returns once that
// transaction has committed (or fn failed, and only fn's own changes were
// rolled back). fn must not keep tx.
func (db *DB) do(ctx context.Context, fn func(tx querier) error) error {
	return db.queue(&op{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

func (db *DB) queue(o *op) error {
	ctx := o.ctx
	db.closeMu.RLock()
	if db.closed {
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
	defer close(db.stopped)
	ctx := context.Background()
	conn, err := db.write.Conn(ctx)
	if err != nil {
		for o := range db.ops {
			o.done <- herald.Wrap("sqlite.writer", err)
		}
		return
	}
	defer conn.Close()
	tx := &stmtCache{q: conn, stmts: map[string]*sql.Stmt{}}
	defer tx.close()
	batch := make([]*op, 0, maxBatch)
	errs := make([]error, 0, maxBatch)
	idle := time.NewTicker(outsideWritesPoll)
	defer idle.Stop()
	for {
		var o *op
		select {
		case op, ok := <-db.ops:
			if !ok {
				return
			}
			o = op
		case <-idle.C:
			// Another process (heraldd admin) may have written: the
			// caches must not keep answering from before it.
			db.outsideWrites(ctx, tx)
			continue
		}
		batch = append(batch[:0], o)
	fill:
		for len(batch) < maxBatch {
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
		errs = db.commit(ctx, conn, tx, batch, errs[:0])
		for i, o := range batch {
			o.done <- errs[i]
		}
	}
}

// commit runs a batch in one transaction. Each op runs inside its own
// savepoint, so one failing op does not undo the others, except runs of
// appends, which appendGroup stores together under one savepoint.
func (db *DB) commit(ctx context.Context, conn *sql.Conn, tx querier, batch []*op, errs []error) []error {
	fail := func(err error) []error {
		errs = errs[:0]
		for range batch {
			errs = append(errs, err)
		}
		return errs
	}
	abort := func(op string, err error) []error {
		conn.ExecContext(ctx, "ROLLBACK")
		db.cache.clear()
		db.ws.forget()
		return fail(classify(op, err))
	}
	// pure: the batch wrote only what grouped appends write, which the
	// cache follows; any other write empties it.
	pure := true
	db.wChats, db.wReads = db.wChats[:0], db.wReads[:0]
	// The transaction's own statements are prepared once, like the rest.
	if _, err := tx.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(classify("sqlite.begin", err))
	}
	// Holding the write lock, nobody else can commit until COMMIT: what
	// the writer knows is exact from here if nobody did since last time.
	db.outsideWrites(ctx, tx)
	errs = errs[:0]
	for range batch {
		errs = append(errs, nil)
	}
	ok := 0
	var after []int
	wrote := false // whether any op has run in this transaction yet
	// one runs op i in its own savepoint.
	one := func(i int) error {
		o := batch[i]
		if o.ctx.Err() != nil {
			errs[i] = herald.Errorf(herald.Unavailable, "the request was cancelled before it was stored")
			return nil
		}
		pure, wrote = false, true
		db.ws.forget() // the op may change any row the writer knows
		if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
			return classify("sqlite.savepoint", err)
		}
		err := o.fn(tx)
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO op"); rerr != nil {
				return classify("sqlite.rollback", rerr)
			}
		} else {
			ok++
		}
		if _, rerr := tx.ExecContext(ctx, "RELEASE op"); rerr != nil {
			return classify("sqlite.release", rerr)
		}
		errs[i] = err
		return nil
	}
	single := make([]bool, 0, len(batch))
	for i := 0; i < len(batch); {
		o := batch[i]
		if o.after {
			after = append(after, i)
			i++
			continue
		}
		if o.app == nil || !o.app.batchable() || db.noGroup {
			if err := one(i); err != nil {
				return abort("sqlite.commit", err)
			}
			i++
			continue
		}
		j := i + 1
		for j < len(batch) && !batch[j].after && batch[j].app != nil && batch[j].app.batchable() {
			j++
		}
		run := batch[i:j]
		single = single[:len(run)]
		// A savepoint copies every page the group changes to a
		// sub-journal first. When the group is the first write of the
		// transaction, the transaction itself can take it back instead.
		first := !wrote
		if !first {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT grp"); err != nil {
				return abort("sqlite.savepoint", err)
			}
		}
		wrote = true
		if err := db.appendGroup(ctx, tx, first, run, errs[i:j], single); err != nil {
			// Not a refusal of one op (those are found before anything
			// is written): take the group back and run each op alone.
			db.ws.forget()
			db.wChats, db.wReads = db.wChats[:0], db.wReads[:0]
			if first {
				if err := db.restart(ctx, conn, tx); err != nil {
					return abort("sqlite.rollback", err)
				}
			} else if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO grp"); rerr != nil {
				return abort("sqlite.rollback", rerr)
			}
			for k := range run {
				errs[i+k], single[k] = nil, true
			}
		}
		if !first {
			if _, err := tx.ExecContext(ctx, "RELEASE grp"); err != nil {
				return abort("sqlite.release", err)
			}
		}
		for k := range run {
			if single[k] {
				if err := one(i + k); err != nil {
					return abort("sqlite.commit", err)
				}
			} else if errs[i+k] == nil {
				ok++
			}
		}
		i = j
	}
	if _, err := tx.ExecContext(ctx, "COMMIT"); err != nil {
		return abort("sqlite.commit", err)
	}
	// Before any caller hears of the commit.
	if pure {
		db.cache.appended(db.wChats, db.wReads)
	} else {
		db.cache.clear()
	}
	for _, i := range after {
		errs[i] = batch[i].fn(conn)
	}
	db.mu.Lock()
	db.stats.Commits++
	db.stats.Writes += int64(ok)
	db.mu.Unlock()
	return errs
}

// restart rolls the writer's transaction back and begins it again, for
// a grouped append that failed as the transaction's first write (its OR
// ROLLBACK statements may have rolled it back already).
func (db *DB) restart(ctx context.Context, conn *sql.Conn, tx querier) error {
	// Its error is not looked at: if no transaction is left to roll
	// back, none is needed; if one is and could not be, BEGIN fails.
	conn.ExecContext(ctx, "ROLLBACK")
	if _, err := tx.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	db.outsideWrites(ctx, tx)
	return nil
}

// outsideWritesPoll is how often an idle writer looks for writes by
// another process, such as the admin console's takedowns, so that the
// read cache follows them within this long even when nothing is sent.
const outsideWritesPoll = 100 * time.Millisecond

// outsideWrites forgets what the writer and the read cache know if
// another connection (another process: this one's readers never write)
// committed since the last look. SQLite's data_version changes exactly
// then.
func (db *DB) outsideWrites(ctx context.Context, tx querier) {
	var v int64
	if err := tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil || v != db.dataVersion {
		db.dataVersion = v
		db.ws.forget()
		db.cache.clear()
	}
}

// classify turns driver errors into herald kinds.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &herald.Error{Kind: herald.NotFound, Op: op, Msg: "not found"}
	}
	if strings.Contains(err.Error(), "database is closed") {
		return &herald.Error{Kind: herald.Unavailable, Op: op, Msg: "the store is closed", Err: err}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &herald.Error{Kind: herald.AlreadyExists, Op: op, Msg: "already exists", Err: err}
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return &herald.Error{Kind: herald.Unavailable, Op: op, Err: err}
		}
	}
	return herald.Wrap(op, err)
}

// stmtCache prepares each distinct query once per connection: parsing SQL
// was a quarter of the write path's CPU before it.
type stmtCache struct {
	q interface {
		querier
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.q.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) < 1000 { // dynamic IN lists must not grow it forever
		c.stmts[query] = st
	}
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext returns a row whose Scan reports a failed prepare.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		// database/sql has no way to build an errored *sql.Row; an
		// unprepared query reports the same error through Scan.
		return c.q.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
}
