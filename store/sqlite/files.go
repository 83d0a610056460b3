package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/store/internal/sqltext"
)

func fileID(m herald.Message) string {
	if m.File == nil {
		return ""
	}
	return m.File.ID
}

func scanFile(s interface{ Scan(...any) error }) (herald.File, error) {
	var f herald.File
	var kind string
	var dur, created, sealed int64
	var thumb int
	err := s.Scan(&f.ID, &f.OwnerID, &f.Name, &f.Size, &f.MIME, &kind, &f.SHA256, &f.Width, &f.Height, &dur, &thumb, &created, &f.Key, &sealed)
	f.Kind, f.Duration, f.Thumb = herald.FileKind(kind), time.Duration(dur)*time.Millisecond, thumb != 0
	f.Created, f.SealedUntil = fromMS(created), fromMS(sealed)
	return f, err
}

// CreateFile implements store.Store.
func (db *DB) CreateFile(ctx context.Context, f herald.File) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, sqltext.InsertFile, f.ID, f.OwnerID, f.Name, f.Size, f.MIME, string(f.Kind), f.SHA256,
			f.Width, f.Height, f.Duration.Milliseconds(), boolInt(f.Thumb), ms(f.Created), f.Key, ms(f.SealedUntil))
		return classify("sqlite.CreateFile", err)
	})
}

func (db *DB) oneFile(ctx context.Context, op, query string, args ...any) (herald.File, error) {
	f, err := scanFile(db.rq.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return f, herald.Errorf(herald.NotFound, "no such file")
	}
	return f, classify(op, err)
}

// File implements store.Store.
func (db *DB) File(ctx context.Context, id string) (herald.File, error) {
	return db.oneFile(ctx, "sqlite.File", sqltext.FileByID, id)
}

// FileByHash implements store.Store.
func (db *DB) FileByHash(ctx context.Context, ownerID int64, sha string) (herald.File, error) {
	return db.oneFile(ctx, "sqlite.FileByHash", sqltext.FileByHash, ownerID, sha)
}

// CanReadFile implements store.Store.
func (db *DB) CanReadFile(ctx context.Context, userID int64, id string) (bool, error) {
	var ok bool
	err := db.rq.QueryRowContext(ctx, sqltext.CanReadFile, id, userID, id, userID, id).Scan(&ok)
	return ok, classify("sqlite.CanReadFile", err)
}

// StorageUsed implements store.Store.
func (db *DB) StorageUsed(ctx context.Context, ownerID int64) (int64, error) {
	var n int64
	err := db.rq.QueryRowContext(ctx, sqltext.StorageUsed, ownerID).Scan(&n)
	return n, classify("sqlite.StorageUsed", err)
}

// FileRefs implements store.Store.
func (db *DB) FileRefs(ctx context.Context, id string) (int, error) {
	var n int
	err := db.rq.QueryRowContext(ctx, sqltext.FileRefs, id).Scan(&n)
	return n, classify("sqlite.FileRefs", err)
}

// ResealFile implements store.Store.
func (db *DB) ResealFile(ctx context.Context, id string, key []byte, sealedUntil time.Time) error {
	return db.do(ctx, func(tx querier) error {
		res, err := tx.ExecContext(ctx, sqltext.ResealFile, key, ms(sealedUntil), id)
		return affected(res, err, "sqlite.ResealFile", "no such file")
	})
}

// ExpiredFiles implements store.Store.
func (db *DB) ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]herald.File, error) {
	rows, err := db.rq.QueryContext(ctx, sqltext.ExpiredFiles, ms(now), limit)
	if err != nil {
		return nil, classify("sqlite.ExpiredFiles", err)
	}
	defer rows.Close()
	var out []herald.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, classify("sqlite.ExpiredFiles", err)
		}
		out = append(out, f)
	}
	return out, classify("sqlite.ExpiredFiles", rows.Err())
}

// DeleteFile implements store.Store.
func (db *DB) DeleteFile(ctx context.Context, id string) error {
	return db.do(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, sqltext.DeleteFile, id)
		return classify("sqlite.DeleteFile", err)
	})
}
