package sqlstore

import (
	"context"
	"time"

	"github.com/heraldim/herald"
)

// FileCols are the columns of a file row, in the order scanners expect.
const FileCols = `id, owner_id, name, size, mime, kind, sha256, width, height, duration, thumb, created_at, key, sealed_until`

// Queries on files.
const (
	InsertFile = `INSERT INTO files (` + FileCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	FileByID   = `SELECT ` + FileCols + ` FROM files WHERE id = ?`
	FileByHash = `SELECT ` + FileCols + ` FROM files WHERE owner_id = ? AND sha256 = ? ORDER BY created_at LIMIT 1`
	// CanReadFile: the uploader, a member of a chat where a live message
	// carries the file, or anyone when that chat is public and up.
	CanReadFile = `SELECT EXISTS (SELECT 1 FROM files WHERE id = ? AND owner_id = ?)
		OR EXISTS (SELECT 1 FROM messages m JOIN members mb ON mb.chat_id = m.chat_id
			WHERE m.file_id = ? AND m.deleted = 0 AND mb.user_id = ?)
		OR EXISTS (SELECT 1 FROM messages m JOIN chats c ON c.id = m.chat_id
			WHERE m.file_id = ? AND m.deleted = 0 AND c.username <> '' AND c.taken_down = 0)`
	// StorageUsed: owner, owner. Files, and what unfinished uploads will
	// add.
	StorageUsed = `SELECT (SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ?)
		+ (SELECT coalesce(sum(size), 0) FROM upload_reservations WHERE owner_id = ?)`
	ResealFile = `UPDATE files SET key = ?, sealed_until = ? WHERE id = ?`
	// ExpiredFiles: files once attached to a self-destructing message
	// whose key is gone, or whose every message is gone. (attached is set
	// with the message's insert, so a file resealed for a message not yet
	// stored is not taken for an orphan.)
	ExpiredFiles = `SELECT ` + FileCols + ` FROM files f WHERE f.sealed_until <> 0
		AND (f.sealed_until <= ? OR (f.attached = 1 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.file_id = f.id AND m.deleted = 0)))
		ORDER BY f.sealed_until LIMIT ?`
	FileRefs = `SELECT count(*) FROM messages WHERE file_id = ? AND deleted = 0`
	// MarkAttached runs with the insert of a message that carries a file.
	MarkAttached = `UPDATE files SET attached = 1 WHERE id = ? AND attached = 0`
	DeleteFile   = `DELETE FROM files WHERE id = ?`
)

// FileID is the id of the file m carries, "" for none.
func FileID(m herald.Message) string {
	if m.File == nil {
		return ""
	}
	return m.File.ID
}

func scanFile(s Row) (herald.File, error) {
	var f herald.File
	var kind string
	var dur, created, sealed, thumb int64
	err := s.Scan(&f.ID, &f.OwnerID, &f.Name, &f.Size, &f.MIME, &kind, &f.SHA256, &f.Width, &f.Height, &dur, &thumb, &created, &f.Key, &sealed)
	f.Kind, f.Duration, f.Thumb = herald.FileKind(kind), time.Duration(dur)*time.Millisecond, thumb != 0
	f.Created, f.SealedUntil = FromMillis(created), FromMillis(sealed)
	return f, err
}

// affected turns a write's outcome into NotFound, with the message format
// and args, when it changed nothing.
func (d Dialect) affected(n int64, err error, op, format string, args ...any) error {
	if err != nil {
		return d.wrap(op, err)
	}
	if n == 0 {
		return herald.Errorf(herald.NotFound, format, args...)
	}
	return nil
}

// CreateFile is store.Store's CreateFile inside the writer's transaction tx.
func (d Dialect) CreateFile(ctx context.Context, tx Querier, f herald.File) error {
	_, err := tx.Exec(ctx, InsertFile, f.ID, f.OwnerID, f.Name, f.Size, f.MIME, string(f.Kind), f.SHA256,
		int64(f.Width), int64(f.Height), f.Duration.Milliseconds(), Flag(f.Thumb), Millis(f.Created), f.Key, Millis(f.SealedUntil))
	return d.wrap("CreateFile", err)
}

// ResealFile is store.Store's ResealFile inside the writer's transaction tx.
func (d Dialect) ResealFile(ctx context.Context, tx Querier, id string, key []byte, sealedUntil time.Time) error {
	n, err := tx.Exec(ctx, ResealFile, key, Millis(sealedUntil), id)
	return d.affected(n, err, "ResealFile", "no such file")
}

// DeleteFile is store.Store's DeleteFile inside the writer's transaction tx.
func (d Dialect) DeleteFile(ctx context.Context, tx Querier, id string) error {
	_, err := tx.Exec(ctx, DeleteFile, id)
	return d.wrap("DeleteFile", err)
}

func (r Reads) oneFile(ctx context.Context, op, query string, args ...any) (herald.File, error) {
	f, err := scanFile(r.q.QueryRow(ctx, query, args...))
	if NoRows(err) {
		return f, herald.Errorf(herald.NotFound, "no such file")
	}
	return f, r.d.wrap(op, err)
}

// File implements store.Store.
func (r Reads) File(ctx context.Context, id string) (herald.File, error) {
	return r.oneFile(ctx, "File", FileByID, id)
}

// FileByHash implements store.Store.
func (r Reads) FileByHash(ctx context.Context, ownerID int64, sha string) (herald.File, error) {
	return r.oneFile(ctx, "FileByHash", FileByHash, ownerID, sha)
}

// CanReadFile implements store.Store.
func (r Reads) CanReadFile(ctx context.Context, userID int64, id string) (bool, error) {
	var ok bool
	err := r.q.QueryRow(ctx, CanReadFile, id, userID, id, userID, id).Scan(&ok)
	return ok, r.d.wrap("CanReadFile", err)
}

// StorageUsed implements store.Store.
func (r Reads) StorageUsed(ctx context.Context, ownerID int64) (int64, error) {
	var n int64
	err := r.q.QueryRow(ctx, StorageUsed, ownerID, ownerID).Scan(&n)
	return n, r.d.wrap("StorageUsed", err)
}

// FileRefs implements store.Store.
func (r Reads) FileRefs(ctx context.Context, id string) (int, error) {
	var n int64
	err := r.q.QueryRow(ctx, FileRefs, id).Scan(&n)
	return int(n), r.d.wrap("FileRefs", err)
}

// ExpiredFiles implements store.Store.
func (r Reads) ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]herald.File, error) {
	out, err := scanAll(ctx, r.q, scanFile, ExpiredFiles, Millis(now), limit)
	return out, r.d.wrap("ExpiredFiles", err)
}

// ReserveUpload is store.Store's ReserveUpload inside the writer's
// transaction tx, which must serialise reservations of one owner (the
// PostgreSQL store locks the owner's row first): the sum it reads is
// then the one it adds to.
func (d Dialect) ReserveUpload(ctx context.Context, tx Querier, id string, ownerID, size int64, at time.Time, quota int64) (int64, bool, error) {
	var used int64
	if err := tx.QueryRow(ctx, StorageUsed, ownerID, ownerID).Scan(&used); err != nil {
		return 0, false, d.wrap("ReserveUpload", err)
	}
	if used+size > quota {
		return used, false, nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO upload_reservations (id, owner_id, size, created_at) VALUES (?, ?, ?, ?)`, id, ownerID, size, Millis(at))
	return used, err == nil, d.wrap("ReserveUpload", err)
}

// ReleaseUpload is store.Store's ReleaseUpload inside the writer's
// transaction tx.
func (d Dialect) ReleaseUpload(ctx context.Context, tx Querier, id string) error {
	_, err := tx.Exec(ctx, `DELETE FROM upload_reservations WHERE id = ?`, id)
	return d.wrap("ReleaseUpload", err)
}

// ReservationsBefore implements store.Store.
func (r Reads) ReservationsBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	ids, err := scanAll(ctx, r.q, func(row Row) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM upload_reservations WHERE created_at < ? ORDER BY created_at LIMIT ?`, Millis(before), int64(limit))
	return ids, r.d.wrap("ReservationsBefore", err)
}
