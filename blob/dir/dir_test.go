package dir_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/blob/blobtest"
	"github.com/heraldim/herald/blob/dir"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return newStore(t, t.TempDir())
	})
}

func newStore(t *testing.T, root string) *dir.Store {
	t.Helper()
	s, err := dir.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func put(t *testing.T, s *dir.Store, key, content string) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, strings.NewReader(content)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func TestLayoutAndModes(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	put(t, s, "files/ab/c", "x")
	tests := []struct {
		path string
		mode fs.FileMode
	}{
		{"files", fs.ModeDir | 0o700},
		{"files/ab", fs.ModeDir | 0o700},
		{"files/ab/c", 0o600},
		{".tmp~", fs.ModeDir | 0o700},
	}
	for _, tc := range tests {
		fi, err := os.Stat(filepath.Join(root, tc.path))
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if fi.Mode() != tc.mode {
			t.Errorf("%s has mode %v, want %v", tc.path, fi.Mode(), tc.mode)
		}
	}
}

func TestFailedPutLeavesNoTemporaryFile(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	r := iotest.TimeoutReader(strings.NewReader(strings.Repeat("x", 100_000)))
	if _, err := s.Put(context.Background(), "k", r); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Join(root, ".tmp~")); len(entries) != 0 {
		t.Errorf("temporary files left after a failed Put: %v", entries)
	}
}

func TestDeletePrunesEmptyDirectories(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s := newStore(t, root)
	put(t, s, "uploads/u/0", "a")
	put(t, s, "uploads/v/0", "b")
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join(root, p))
		return err == nil
	}
	if err := s.Delete(ctx, "uploads/u/0"); err != nil {
		t.Fatal(err)
	}
	if exists("uploads/u") || !exists("uploads/v/0") {
		t.Errorf("after deleting uploads/u/0: uploads/u exists %v, uploads/v/0 exists %v; want false, true", exists("uploads/u"), exists("uploads/v/0"))
	}
	if err := s.Delete(ctx, "uploads/v/0"); err != nil {
		t.Fatal(err)
	}
	if exists("uploads") || !exists(".tmp~") {
		t.Errorf("after deleting the last upload: uploads exists %v, .tmp~ exists %v; want false, true", exists("uploads"), exists(".tmp~"))
	}
}

func TestNewSweepsStaleTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	newStore(t, root)
	stale, fresh := filepath.Join(root, ".tmp~", "STALE"), filepath.Join(root, ".tmp~", "FRESH")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	newStore(t, root)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file survived New: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("recent temporary file removed by New: %v", err)
	}
}

// TestSymlinkCannotEscape checks that a symbolic link planted under the
// root does not lead the store outside it.
func TestSymlinkCannotEscape(t *testing.T) {
	ctx := context.Background()
	root, outside := t.TempDir(), t.TempDir()
	s := newStore(t, root)
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "link/new", strings.NewReader("x")); err == nil {
		t.Error("Put through a symlink out of the root succeeded")
	}
	if o, err := s.Open(ctx, "link/secret"); err == nil {
		o.Close()
		t.Error("Open through a symlink out of the root succeeded")
	}
	// Delete and List may fail or do nothing; they must not reach out.
	s.Delete(ctx, "link/secret")
	if list, _ := s.List(ctx, "link/"); len(list) != 0 {
		t.Errorf("List through a symlink out of the root = %v, want nothing", list)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 || entries[0].Name() != "secret" {
		t.Errorf("directory outside the root now holds %v, want only secret", entries)
	}
}
