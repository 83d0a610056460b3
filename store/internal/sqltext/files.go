// Package sqltext holds SQL that the SQLite and PostgreSQL stores share
// word for word. Both write placeholders as "?" (the PostgreSQL store
// numbers them), integers for times and booleans, and keep to what both
// engines accept, so a query lives here once instead of twice.
package sqltext

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
	StorageUsed = `SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ?`
	ResealFile  = `UPDATE files SET key = ?, sealed_until = ? WHERE id = ?`
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
