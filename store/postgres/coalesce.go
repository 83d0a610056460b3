package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/heraldim/herald/store/internal/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Reads on the read pool of one row — a membership, a block, a rate
// token — and the shared reads of many (sqlstore's: a chat's members)
// are coalesced: several per send. A caller's Scan queues the
// read; a coalescer sends every read waiting at that moment in one
// pipeline on one connection, as the writer does with writes, so that a
// burst of sends costs the database a few round trips rather than one
// per read, and both sides far fewer wake-ups and system calls. Each
// statement still runs on its own snapshot (READ COMMITTED takes one per
// statement), so the answers are the ones reading alone would give.
//
// A pipeline is one implicit transaction: if any of its statements
// fails, PostgreSQL skips the rest and rolls back what ran (a rate
// token's upsert, say). Then each read of that pipeline runs again on
// its own, so one failing read never fails another.

// coalescers is how many pipelines of reads may be in flight at once.
const coalescers = 2

// maxCoalesce bounds the reads of one pipeline.
const maxCoalesce = 64

// job is a queued read: of one row or of many.
type job struct {
	row  *rowJob
	rows *rowsJob
}

func (j job) finish() {
	if j.row != nil {
		close(j.row.done)
	} else {
		close(j.rows.done)
	}
}

// rowJob is one queued read of a row.
type rowJob struct {
	query string // rewritten for PostgreSQL
	args  []any
	dst   []any
	err   error
	done  chan struct{}
}

// lazyRow is pgx.Row for the read pool: the read is queued when Scan is
// called, with the destinations, and Scan returns once it has run.
type lazyRow struct {
	db    *DB
	ctx   context.Context
	query string
	args  []any
}

func (r lazyRow) Scan(dst ...any) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	j := &rowJob{query: r.query, args: r.args, dst: dst, done: make(chan struct{})}
	r.db.closeMu.RLock()
	if r.db.closed.Load() {
		r.db.closeMu.RUnlock()
		return errClosed
	}
	r.db.rowq <- job{row: j}
	r.db.closeMu.RUnlock()
	// Not abandoned when ctx ends: the coalescer writes into dst, which
	// must not change under a caller that has moved on. A pipeline is
	// bounded by readTimeout.
	<-j.done
	return j.err
}

// readTimeout bounds one pipeline of coalesced reads.
const readTimeout = 30 * time.Second

// coalesce runs queued reads until the queue is closed.
func (db *DB) coalesce() {
	defer db.coalescers.Done()
	jobs := make([]job, 0, maxCoalesce)
	for {
		j, ok := <-db.rowq
		if !ok {
			return
		}
		jobs = append(jobs[:0], j)
	fill:
		for len(jobs) < maxCoalesce {
			select {
			case j, ok := <-db.rowq:
				if !ok {
					break fill
				}
				jobs = append(jobs, j)
			default:
				break fill
			}
		}
		db.runRows(jobs)
	}
}

// runRows runs jobs in one pipeline and answers each.
func (db *DB) runRows(jobs []job) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	defer func() {
		for _, j := range jobs {
			j.finish()
		}
	}()
	alone := func(j job) {
		if j.row != nil {
			j.row.err = db.read.QueryRow(ctx, j.row.query, j.row.args...).Scan(j.row.dst...)
		} else {
			j.rows.read(db.read.Query(ctx, j.rows.query, j.rows.args...))
		}
	}
	if len(jobs) == 1 {
		alone(jobs[0])
		return
	}
	b := &pgx.Batch{}
	for _, j := range jobs {
		if j.row != nil {
			b.Queue(j.row.query, j.row.args...)
		} else {
			b.Queue(j.rows.query, j.rows.args...)
		}
	}
	br := db.read.SendBatch(ctx, b)
	failed := false
	for _, j := range jobs {
		if j.row != nil {
			j.row.err = br.QueryRow().Scan(j.row.dst...)
			failed = j.row.err != nil && !noRows(j.row.err)
		} else {
			j.rows.read(br.Query())
			failed = j.rows.err != nil
		}
		if failed {
			break
		}
	}
	if err := br.Close(); err != nil {
		failed = true
	}
	if failed {
		for _, j := range jobs {
			alone(j)
		}
	}
}

// rowsJob is one queued read of many rows, which the coalescer copies
// out of the connection's buffer for the caller to scan (bufferedRows).
type rowsJob struct {
	query string
	args  []any
	fds   []pgconn.FieldDescription
	rows  [][][]byte
	err   error
	done  chan struct{}
}

// read reads every row of rs into j.
func (j *rowsJob) read(rs pgx.Rows, err error) {
	j.fds, j.rows, j.err = nil, nil, err
	if err != nil {
		return
	}
	defer rs.Close()
	for rs.Next() {
		if j.fds == nil {
			j.fds = slices.Clone(rs.FieldDescriptions())
		}
		raw := rs.RawValues()
		row := make([][]byte, len(raw))
		for i, v := range raw {
			if v != nil {
				row[i] = slices.Clone(v)
			}
		}
		j.rows = append(j.rows, row)
	}
	rs.Close()
	j.err = rs.Err()
}

// typeMaps are the maps that scan buffered rows: a map caches its scan
// plans and is not safe for concurrent use, and a new one is costly.
var typeMaps = sync.Pool{New: func() any { return pgtype.NewMap() }}

// bufferedRows is sqlstore.Rows over rows a coalescer read.
type bufferedRows struct {
	j *rowsJob
	i int
}

func (r *bufferedRows) Next() bool {
	if r.j.err != nil || r.i >= len(r.j.rows) {
		return false
	}
	r.i++
	return true
}

func (r *bufferedRows) Scan(dst ...any) error {
	if r.i == 0 || r.i > len(r.j.rows) {
		return errors.New("postgres: Scan without a row")
	}
	m := typeMaps.Get().(*pgtype.Map)
	defer typeMaps.Put(m)
	return pgx.ScanRow(m, r.j.fds, r.j.rows[r.i-1], dst...)
}

func (r *bufferedRows) Err() error { return r.j.err }
func (r *bufferedRows) Close()     {}

// queryBuffered runs a read of many rows through the coalescers.
func (db *DB) queryBuffered(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &rowsJob{query: sql(query), args: args, done: make(chan struct{})}
	db.closeMu.RLock()
	if db.closed.Load() {
		db.closeMu.RUnlock()
		return nil, errClosed
	}
	db.rowq <- job{rows: j}
	db.closeMu.RUnlock()
	<-j.done
	if j.err != nil {
		return nil, j.err
	}
	return &bufferedRows{j: j}, nil
}
