package sqlite

import (
	"context"
	"database/sql"

	"github.com/heraldim/herald/store/internal/sqlstore"
)

// dialect is what store/internal/sqlstore's shared code needs of this
// store: its name in errors and its driver's error kinds.
var dialect = sqlstore.Dialect{Name: "sqlite", Classify: classify}

// shim is a querier (the read pool's statement cache or the writer's
// connection) as sqlstore.Querier: the SQL is SQLite's already.
type shim struct{ q querier }

func (s shim) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s shim) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (s shim) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return s.q.QueryRowContext(ctx, query, args...)
}

// sqlRows drops Close's error: Err reports what went wrong while reading.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }
