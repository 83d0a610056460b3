package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reads of one row on the read pool — a membership, a block, a rate
// token: several per send — are coalesced. A caller's Scan queues the
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
	r.db.rowq <- j
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
	jobs := make([]*rowJob, 0, maxCoalesce)
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
func (db *DB) runRows(jobs []*rowJob) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	defer func() {
		for _, j := range jobs {
			close(j.done)
		}
	}()
	if len(jobs) == 1 {
		j := jobs[0]
		j.err = db.read.QueryRow(ctx, j.query, j.args...).Scan(j.dst...)
		return
	}
	b := &pgx.Batch{}
	for _, j := range jobs {
		b.Queue(j.query, j.args...)
	}
	br := db.read.SendBatch(ctx, b)
	failed := false
	for _, j := range jobs {
		j.err = br.QueryRow().Scan(j.dst...)
		if j.err != nil && !noRows(j.err) {
			failed = true
			break
		}
	}
	if err := br.Close(); err != nil {
		failed = true
	}
	if failed {
		for _, j := range jobs {
			j.err = db.read.QueryRow(ctx, j.query, j.args...).Scan(j.dst...)
		}
	}
}
