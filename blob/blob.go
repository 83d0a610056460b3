// Package blob defines where Herald keeps file bytes: attachments, avatars,
// chunks of resumable uploads. The bytes are opaque to this layer — they are
// encrypted before they get here — so a Store only stores, reads back by
// range, deletes and lists them.
//
// The embedded implementation is blob/dir; blob/s3 serves several nodes from
// one bucket. Every implementation passes blob/blobtest unchanged, and
// blob/blobs opens the one a configuration URL names.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Store holds opaque objects by key. Every method rejects a key (or a List
// prefix) that ValidKey (or ValidPrefix) rejects, with an error satisfying
// errors.Is(err, ErrInvalidKey), before touching storage.
type Store interface {
	// Put stores all of r under key, replacing any object there. It
	// streams, never holding the whole object in memory, and returns the
	// number of bytes written. The object is visible only once Put returns
	// nil: if r fails, ctx ends or the process crashes midway, key keeps
	// the object it had before, or stays missing.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns random access to the object under key, ErrNotFound if
	// there is none. ctx also bounds the reads made through the Object, as
	// a store may fetch ranges lazily; the Object must be closed.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object under key. Deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose key starts with prefix, sorted by
	// key. An empty prefix lists everything.
	List(ctx context.Context, prefix string) ([]Info, error)
}

// Object is random access to one stored object. Reads never mix two
// versions: if the key is replaced or deleted while the Object is open, it
// either keeps returning the bytes it was opened on or fails.
type Object interface {
	io.ReaderAt
	io.Closer
	// Size is the length of the object in bytes.
	Size() int64
}

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// ErrNotFound is returned (wrapped) for a key that holds no object.
var ErrNotFound = errors.New("blob: not found")

// ErrInvalidKey is returned (wrapped) for a key or prefix outside the rules
// of ValidKey.
var ErrInvalidKey = errors.New("blob: invalid key")

// Limits on keys. They keep every key a legal file name on common file
// systems and a legal S3 object name, with room for a bucket prefix.
const (
	MaxKeyLen     = 512
	MaxSegmentLen = 255
)

// ValidKey reports whether key may name an object. A key is one or more
// segments joined by "/"; a segment is 1 to MaxSegmentLen characters from
// [a-z0-9._-] and is neither "." nor "..". So a key has no empty segment,
// no leading or trailing slash and no upper case, and cannot climb out of a
// directory: path traversal is impossible by construction, and keys mean
// the same on case-insensitive file systems.
//
// Keys form a hierarchy in blob/dir, so a key must not also be a directory
// of another key: storing both "a" and "a/b" fails there.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validSegment(seg); err != nil {
			return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, err)
		}
	}
	return nil
}

// ValidPrefix reports whether prefix may select keys in List: it is empty,
// or it is the beginning of some valid key ("files/", "uploads/x", "a.b").
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// A prefix that is a valid key, or becomes one with a plain character
	// appended, is one whose every complete segment is valid: the key rules
	// with no special case for a trailing slash or a partial segment.
	if ValidKey(prefix) != nil && ValidKey(prefix+"x") != nil {
		return fmt.Errorf("%w: prefix %q: no valid key starts with it", ErrInvalidKey, prefix)
	}
	return nil
}

func validSegment(seg string) error {
	switch {
	case seg == "":
		return errors.New("empty segment")
	case seg == "." || seg == "..":
		return fmt.Errorf("segment %q", seg)
	case len(seg) > MaxSegmentLen:
		return fmt.Errorf("segment longer than %d bytes", MaxSegmentLen)
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("character %q not in [a-z0-9._-]", c)
		}
	}
	return nil
}
