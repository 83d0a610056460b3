// Package blobtest is the conformance suite for blob.Store. Every
// implementation runs it unchanged.
package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/heraldim/herald/blob"
)

// Run runs the conformance suite. newStore must return a new, empty store
// each time it is called; the subtests run in parallel, each on its own.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"PutOpen", testPutOpen},
		{"ReadAt", testReadAt},
		{"ReadAtPastEnd", testReadAtPastEnd},
		{"Replace", testReplace},
		{"OpenMissing", testOpenMissing},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"List", testList},
		{"InvalidKeys", testInvalidKeys},
		{"FailedPut", testFailedPut},
		{"OpenSurvivesChange", testOpenSurvivesChange},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutsSameKey", testConcurrentPutsSameKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// data returns n reproducible pseudo-random bytes, different for each seed.
func data(seed uint64, n int) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// put stores b under key through a reader that is not a bytes.Reader and
// returns short reads, as a network body would.
func put(t *testing.T, s blob.Store, key string, b []byte) {
	t.Helper()
	n, err := s.Put(context.Background(), key, iotest.HalfReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if n != int64(len(b)) {
		t.Fatalf("Put(%q) = %d, want %d", key, n, len(b))
	}
}

// open opens key and closes it when the test ends.
func open(t *testing.T, s blob.Store, key string) blob.Object {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close(%q): %v", key, err)
		}
	})
	return o
}

// readAll returns the object's bytes, read through ReadAt.
func readAll(t *testing.T, o blob.Object) []byte {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
	if err != nil {
		t.Fatalf("reading object: %v", err)
	}
	return b
}

// checkContent fails the test unless key holds exactly want.
func checkContent(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	o := open(t, s, key)
	if o.Size() != int64(len(want)) {
		t.Fatalf("Open(%q).Size() = %d, want %d", key, o.Size(), len(want))
	}
	if got := readAll(t, o); !bytes.Equal(got, want) {
		t.Fatalf("content of %q differs from what was put (%d bytes, want %d)", key, len(got), len(want))
	}
}

func checkNotFound(t *testing.T, s blob.Store, key string) {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err == nil {
		o.Close()
		t.Fatalf("Open(%q) succeeded, want ErrNotFound", key)
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open(%q) = %v, want ErrNotFound", key, err)
	}
}

func testPutOpen(t *testing.T, s blob.Store) {
	tests := []struct {
		key  string
		size int
	}{
		{"empty", 0},
		{"one", 1},
		{"files/abc123", 1000},
		{"uploads/xyz/0000000000001024", 64 << 10},
		// More than one part of a small multipart upload, and many
		// buffers of anything that copies.
		{"files/big", 5<<20 + 12345},
	}
	for i, tc := range tests {
		want := data(uint64(i), tc.size)
		put(t, s, tc.key, want)
		checkContent(t, s, tc.key, want)
	}
}

func testReadAt(t *testing.T, s blob.Store) {
	const size = 100_003
	want := data(1, size)
	put(t, s, "k", want)
	o := open(t, s, "k")

	check := func(off, n int) {
		t.Helper()
		p := make([]byte, n)
		got, err := o.ReadAt(p, int64(off))
		// io.ReaderAt allows EOF with a full read that ends at the end.
		if err != nil && !(err == io.EOF && off+n == size) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
		}
		if got != n || !bytes.Equal(p, want[off:off+n]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d bytes, wrong content", n, off, got)
		}
	}
	tests := []struct {
		name   string
		off, n int
	}{
		{"start", 0, 10},
		{"first byte", 0, 1},
		{"middle", size / 2, 1234},
		{"end", size - 10, 10},
		{"last byte", size - 1, 1},
		{"whole", 0, size},
		{"across", 12345, 54321},
		{"nothing", 500, 0},
	}
	for _, tc := range tests {
		check(tc.off, tc.n)
	}
	r := rand.New(rand.NewPCG(2, 3))
	for range 50 {
		off := r.IntN(size)
		check(off, r.IntN(size-off+1))
	}
}

func testReadAtPastEnd(t *testing.T, s blob.Store) {
	want := data(2, 1000)
	put(t, s, "k", want)
	put(t, s, "empty", nil)
	tests := []struct {
		key    string
		off, n int
		wantN  int
	}{
		{"k", 995, 10, 5},
		{"k", 0, 2000, 1000},
		{"k", 1000, 10, 0},
		{"k", 5000, 10, 0},
		{"empty", 0, 10, 0},
	}
	for _, tc := range tests {
		o := open(t, s, tc.key)
		p := make([]byte, tc.n)
		n, err := o.ReadAt(p, int64(tc.off))
		if n != tc.wantN || err != io.EOF {
			t.Errorf("%s: ReadAt(%d bytes at %d) = %d, %v; want %d, EOF", tc.key, tc.n, tc.off, n, err, tc.wantN)
			continue
		}
		if n > 0 && !bytes.Equal(p[:n], want[tc.off:tc.off+n]) {
			t.Errorf("%s: ReadAt(%d bytes at %d): wrong content", tc.key, tc.n, tc.off)
		}
	}
}

func testReplace(t *testing.T, s blob.Store) {
	put(t, s, "files/k", data(3, 5000))
	want := data(4, 300)
	put(t, s, "files/k", want)
	checkContent(t, s, "files/k", want)
	list, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Key != "files/k" || list[0].Size != 300 {
		t.Errorf("List after replace = %+v, want files/k of 300 bytes only", list)
	}
}

func testOpenMissing(t *testing.T, s blob.Store) {
	put(t, s, "a/b", []byte("x"))
	for _, key := range []string{"missing", "a/missing", "no/such/dir/key", "a", "a/b/c"} {
		checkNotFound(t, s, key)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "uploads/u/0", []byte("chunk"))
	put(t, s, "uploads/v/0", []byte("other"))
	if err := s.Delete(ctx, "uploads/u/0"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkNotFound(t, s, "uploads/u/0")
	checkContent(t, s, "uploads/v/0", []byte("other"))
	// The key can be used again after its object, and perhaps its
	// directory, are gone.
	put(t, s, "uploads/u/0", []byte("again"))
	checkContent(t, s, "uploads/u/0", []byte("again"))
}

func testDeleteMissing(t *testing.T, s blob.Store) {
	put(t, s, "a/b", []byte("x"))
	for _, key := range []string{"missing", "no/such/dir/key", "a", "a/b/c"} {
		if err := s.Delete(context.Background(), key); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", key, err)
		}
	}
	checkContent(t, s, "a/b", []byte("x"))
}

func testList(t *testing.T, s blob.Store) {
	sizes := map[string]int{
		"files/a":                      1,
		"files/ab":                     2,
		"files/b/c":                    3,
		"files-x":                      4,
		"files.y":                      5,
		"uploads/u1/0000000000000000":  6,
		"uploads/u1/0000000000001024":  0,
		"uploads/u10/0000000000000000": 8,
		"z":                            9,
	}
	for key, n := range sizes {
		put(t, s, key, data(5, n))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"files-x", "files.y", "files/a", "files/ab", "files/b/c", "uploads/u1/0000000000000000", "uploads/u1/0000000000001024", "uploads/u10/0000000000000000", "z"}},
		{"files/", []string{"files/a", "files/ab", "files/b/c"}},
		{"files", []string{"files-x", "files.y", "files/a", "files/ab", "files/b/c"}},
		{"files/a", []string{"files/a", "files/ab"}},
		{"files/b/", []string{"files/b/c"}},
		{"uploads/u1/", []string{"uploads/u1/0000000000000000", "uploads/u1/0000000000001024"}},
		{"uploads/u1", []string{"uploads/u1/0000000000000000", "uploads/u1/0000000000001024", "uploads/u10/0000000000000000"}},
		{"uploads/u1/0000000000001", []string{"uploads/u1/0000000000001024"}},
		{"z", []string{"z"}},
		{"nothing/", nil},
		{"files/a/", nil},
		{"zz", nil},
	}
	for _, tc := range tests {
		list, err := s.List(context.Background(), tc.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", tc.prefix, err)
			continue
		}
		var got []string
		for _, info := range list {
			got = append(got, info.Key)
			if info.Size != int64(sizes[info.Key]) {
				t.Errorf("List(%q): %s has size %d, want %d", tc.prefix, info.Key, info.Size, sizes[info.Key])
			}
			if info.Modified.IsZero() {
				t.Errorf("List(%q): %s has no modification time", tc.prefix, info.Key)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	ctx := context.Background()
	keys := []string{"", "/a", "a/", "a//b", "../x", "..", ".", "a/../b", "a/./b", "a/..", "A", "a b", "a\\b", "a\x00b", "é"}
	for _, key := range keys {
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte("x"))); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if o, err := s.Open(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			if err == nil {
				o.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../", "./", "A", "a b"} {
		if _, err := s.List(ctx, prefix); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("List after invalid puts = %v, %v; want nothing stored", list, err)
	}
}

// failingReader returns n bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	// The bytes are never read back, so whatever p holds will do.
	n := min(len(p), r.n, 32<<10)
	r.n -= n
	return n, nil
}

func testFailedPut(t *testing.T, s blob.Store) {
	errSource := errors.New("source failed")
	tests := []struct {
		name string
		n    int
		err  error
	}{
		{"at once", 0, errSource},
		{"midway", 3 << 20, errSource},
		{"after a part", 6 << 20, errSource},
		// What a truncated HTTP request body reports. Treating it as the
		// end of the data would store a truncated object.
		{"unexpected EOF", 1000, io.ErrUnexpectedEOF},
		{"unexpected EOF after a part", 6 << 20, io.ErrUnexpectedEOF},
	}
	old := data(6, 777)
	for i, tc := range tests {
		missing := fmt.Sprintf("missing%d", i)
		if _, err := s.Put(context.Background(), missing, &failingReader{tc.n, tc.err}); !errors.Is(err, tc.err) {
			t.Errorf("%s: Put = %v, want %v", tc.name, err, tc.err)
		}
		checkNotFound(t, s, missing)

		existing := fmt.Sprintf("existing%d", i)
		put(t, s, existing, old)
		if _, err := s.Put(context.Background(), existing, &failingReader{tc.n, tc.err}); !errors.Is(err, tc.err) {
			t.Errorf("%s: Put over an object = %v, want %v", tc.name, err, tc.err)
		}
		checkContent(t, s, existing, old)
	}

	// A cancelled context fails the Put too.
	ctx, cancel := context.WithCancel(context.Background())
	r := io.MultiReader(&failingReader{n: 1 << 20, err: io.EOF}, cancelReader(cancel), &failingReader{n: 1 << 20, err: io.EOF})
	if _, err := s.Put(ctx, "cancelled", r); err == nil {
		t.Errorf("Put with a context cancelled midway succeeded")
	}
	checkNotFound(t, s, "cancelled")

	list, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(tests) {
		t.Errorf("List after failed puts = %+v, want only the %d existing objects", list, len(tests))
	}
}

// cancelReader calls cancel when read, and reads nothing.
type cancelReader context.CancelFunc

func (c cancelReader) Read([]byte) (int, error) {
	c()
	return 0, io.EOF
}

// testOpenSurvivesChange checks that an open object never mixes versions:
// after a replace or a delete it reads the old bytes or fails.
func testOpenSurvivesChange(t *testing.T, s blob.Store) {
	old, next := data(7, 4096), data(8, 4096)
	for _, change := range []string{"replace", "delete"} {
		put(t, s, change, old)
		o := open(t, s, change)
		if change == "replace" {
			put(t, s, change, next)
		} else if err := s.Delete(context.Background(), change); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 100)
		n, err := o.ReadAt(p, 1000)
		if err == nil && !bytes.Equal(p[:n], old[1000:1100]) {
			t.Errorf("after %s: ReadAt of the open object returned other bytes than it was opened on", change)
		}
	}
}

func testConcurrentPuts(t *testing.T, s blob.Store) {
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b := data(uint64(100+i), 50_000+i)
			if _, err := s.Put(context.Background(), fmt.Sprintf("c/%02d", i), bytes.NewReader(b)); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		checkContent(t, s, fmt.Sprintf("c/%02d", i), data(uint64(100+i), 50_000+i))
	}
}

func testConcurrentPutsSameKey(t *testing.T, s blob.Store) {
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.Put(context.Background(), "same/key", bytes.NewReader(data(uint64(200+i), 20_000))); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got := readAll(t, open(t, s, "same/key"))
	for i := range n {
		if bytes.Equal(got, data(uint64(200+i), 20_000)) {
			return
		}
	}
	t.Errorf("after concurrent Puts to one key, it holds none of them whole")
}
