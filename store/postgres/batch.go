package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// sender is what can send a pipeline: a writer's transaction or the read
// pool.
type sender interface {
	send(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// send sends b on a connection of the read pool.
func (p poolQuerier) send(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if p.db.closed.Load() {
		return errResults{errClosed}
	}
	return p.db.read.SendBatch(ctx, b)
}

// batch collects statements that do not need each other's results and
// sends them in one round trip (a pipeline). Each statement's result is
// read by the function queued with it, in order, when the batch runs.
// PostgreSQL runs them one after another, so a later statement sees what
// an earlier one wrote.
type batch struct {
	b   pgx.Batch
	fns []func(pgx.BatchResults) error
}

// exec queues a statement whose result is not needed.
func (b *batch) exec(query string, args ...any) {
	b.b.Queue(sql(query), args...)
	b.fns = append(b.fns, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
}

// execN queues a statement and stores in n how many rows it changed.
func (b *batch) execN(n *int64, query string, args ...any) {
	b.b.Queue(sql(query), args...)
	b.fns = append(b.fns, func(br pgx.BatchResults) error {
		ct, err := br.Exec()
		*n = ct.RowsAffected()
		return err
	})
}

// row queues a statement that returns at most one row, read by scan
// (which gets pgx.ErrNoRows from Scan if there is none).
func (b *batch) row(scan func(pgx.Row) error, query string, args ...any) {
	b.b.Queue(sql(query), args...)
	b.fns = append(b.fns, func(br pgx.BatchResults) error { return scan(br.QueryRow()) })
}

// rows queues a statement whose rows each reads, one call per row.
func (b *batch) rows(each func(pgx.Rows) error, query string, args ...any) {
	b.b.Queue(sql(query), args...)
	b.fns = append(b.fns, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// run sends the batch and reads every result, stopping at the first
// error: PostgreSQL skips the rest of a pipeline after one.
func (b *batch) run(ctx context.Context, s sender) error {
	if len(b.fns) == 0 {
		return nil
	}
	br := s.send(ctx, &b.b)
	var err error
	for _, fn := range b.fns {
		if err = fn(br); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if t, ok := s.(*tx); ok {
		t.check(err)
	}
	return err
}

// noRows reports whether err is the absence of a row, not a failure.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// then queues fn to run, in order, once the statements queued before it
// have been read.
func (b *batch) then(fn func() error) {
	b.fns = append(b.fns, func(pgx.BatchResults) error { return fn() })
}
