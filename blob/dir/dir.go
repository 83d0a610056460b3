// Package dir is the embedded blob.Store: each object is a file under a root
// directory, at the path its key names ("files/abc" is root/files/abc).
//
// All access goes through an os.Root, so not even a symbolic link planted
// under the root can make the store touch a file outside it. Objects are
// written to root/.tmp~ first and renamed into place once synced, which is
// what makes Put atomic; ".tmp~" is not a valid key segment, so it never
// collides with a key nor shows up in List.
package dir

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/heraldim/herald/blob"
)

const (
	tmpDir = ".tmp~"
	// staleTmp is how long a temporary file must have gone unwritten before
	// New takes it for the leftover of a crash and removes it. An upload in
	// progress writes more often than that.
	staleTmp = time.Hour
	// commitTries bounds how often Put retries creating the directories of
	// its key when a concurrent Delete prunes them, now empty, under it.
	commitTries = 5
)

// Store is a blob.Store in a directory. It is safe for concurrent use.
type Store struct {
	root *os.Root
}

var _ blob.Store = (*Store)(nil)

// New returns a Store rooted at dir, creating dir (mode 0700) if needed, and
// removes temporary files that a crash left behind.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("dir: %w", err)
	}
	if err := root.Mkdir(tmpDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("dir: %w", err)
	}
	s := &Store{root: root}
	if err := s.sweep(); err != nil {
		root.Close()
		return nil, fmt.Errorf("dir: removing stale temporary files: %w", err)
	}
	return s, nil
}

// sweep removes the temporary files nobody has written to in staleTmp. It
// spares newer ones in case another Store shares the directory.
func (s *Store) sweep() error {
	entries, err := fs.ReadDir(s.root.FS(), tmpDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleTmp {
			continue
		}
		if err := s.root.Remove(path.Join(tmpDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Put implements blob.Store. It writes a temporary file, syncs it, renames
// it to key and syncs the directory that now holds it, so a crash at any
// point leaves either the old object or the new one.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := blob.ValidKey(key); err != nil {
		return 0, err
	}
	tmp := path.Join(tmpDir, rand.Text())
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("dir: put %s: %w", key, err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.commit(tmp, key)
	}
	if err != nil {
		s.root.Remove(tmp)
		return 0, fmt.Errorf("dir: put %s: %w", key, err)
	}
	return n, nil
}

// commit moves the synced temporary file tmp to key.
func (s *Store) commit(tmp, key string) error {
	dir := path.Dir(key)
	for try := 1; ; try++ {
		err := s.mkdirs(dir)
		if err == nil {
			err = s.root.Rename(tmp, key)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || try == commitTries {
			return err
		}
	}
	return s.syncDir(dir)
}

// mkdirs is MkdirAll that also syncs the parent of every directory it
// creates, so that a new object's path survives a crash, not just its file.
func (s *Store) mkdirs(dir string) error {
	if fi, err := s.root.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	cur := ""
	for seg := range strings.SplitSeq(dir, "/") {
		parent := cur
		cur = path.Join(cur, seg)
		err := s.root.Mkdir(cur, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := s.syncDir(path.Join(".", parent)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open implements blob.Store. The Object reads the file it opened, so it
// keeps returning the old bytes if the key is replaced or deleted meanwhile.
func (s *Store) Open(ctx context.Context, key string) (blob.Object, error) {
	if err := blob.ValidKey(key); err != nil {
		return nil, err
	}
	f, err := s.root.Open(key)
	if notFound(err) {
		return nil, fmt.Errorf("dir: open %s: %w", key, blob.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("dir: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		// A directory of longer keys, not an object.
		err = blob.ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dir: open %s: %w", key, err)
	}
	return &object{f: f, size: fi.Size()}, nil
}

// Delete implements blob.Store. It also removes the directories that the
// deletion leaves empty, so that finished uploads leave no trace.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := blob.ValidKey(key); err != nil {
		return err
	}
	fi, err := s.root.Lstat(key)
	if notFound(err) || err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		err = s.root.Remove(key)
	}
	if err == nil {
		err = s.syncDir(path.Dir(key))
	}
	if err != nil && !notFound(err) {
		return fmt.Errorf("dir: delete %s: %w", key, err)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		// Fails, ending the climb, at the first directory still in use.
		if s.root.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// List implements blob.Store. It walks only the directory the prefix names
// up to its last slash.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Info, error) {
	if err := blob.ValidPrefix(prefix); err != nil {
		return nil, err
	}
	start := path.Dir(prefix + "x") // the prefix's directory, "." for the root
	var out []blob.Info
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		switch {
		case notFound(err) && p == start:
			return fs.SkipAll // nothing stored under the prefix
		case notFound(err):
			return nil // deleted while we walked
		case err != nil:
			return err
		case p == start:
			return nil
		}
		// Temporary files and anything else that no key could name are
		// not objects; p is a key, since it is relative to the root.
		if blob.ValidKey(d.Name()) != nil || !strings.HasPrefix(p, prefix) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		out = append(out, blob.Info{Key: p, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dir: list %q: %w", prefix, err)
	}
	// The walk goes directory by directory, which is not key order: "a-b"
	// sorts before "a/x" but is visited after the directory "a".
	slices.SortFunc(out, func(a, b blob.Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// notFound reports whether err says that a path does not exist, including
// because one of its directories is a file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// object is an open file.
type object struct {
	f    *os.File
	size int64
}

func (o *object) ReadAt(p []byte, off int64) (int, error) { return o.f.ReadAt(p, off) }
func (o *object) Close() error                            { return o.f.Close() }
func (o *object) Size() int64                             { return o.size }

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
