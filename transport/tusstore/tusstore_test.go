package tusstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/client"
	"github.com/heraldim/herald/crypto"
	"github.com/tus/tusd/v2/pkg/handler"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	blobs, err := dir.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return New(blobs, sealer, nil)
}

func newUpload(t *testing.T, s *Store, size int64) *upload {
	t.Helper()
	up, err := s.NewUpload(context.Background(), handler.FileInfo{Size: size, MetaData: handler.MetaData{OwnerKey: "1", "filename": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	return up.(*upload)
}

// Issue 22, item 8: an upload with as many parts as it may have, each
// with the largest offset, size and key, still has a state the store
// loads with room to spare, so it can be resumed and deleted.
func TestStateAtTheCapLoads(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	u := newUpload(t, s, math.MaxInt64)
	for i := range DefaultMaxParts {
		u.st.Parts = append(u.st.Parts, part{Offset: math.MaxInt64 - int64(i), Size: math.MaxInt64, Key: bytes.Repeat([]byte{0xff}, 32)})
	}
	if err := u.save(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := s.blobs.Open(ctx, infoKey(u.id))
	if err != nil {
		t.Fatal(err)
	}
	size := obj.Size()
	obj.Close()
	if size > maxState/2 {
		t.Fatalf("the state at %d parts is %d bytes; the store loads at most %d", DefaultMaxParts, size, maxState)
	}
	if p, err := s.Progress(ctx, u.id); err != nil || p.Parts != DefaultMaxParts {
		t.Fatalf("Progress = %+v, %v", p, err)
	}
	if err := s.Delete(ctx, u.id); err != nil {
		t.Fatal(err)
	}
}

// The last part an upload may have must finish it; one that does not is
// not kept (nor its blob), and the upload stays as it was.
func TestWriteAtTheCap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.MaxParts = 3
	u := newUpload(t, s, 100)
	for off := int64(0); off < 20; off += 10 {
		if n, err := u.WriteChunk(ctx, off, bytes.NewReader(make([]byte, 10))); n != 10 || err != nil {
			t.Fatalf("WriteChunk at %d = %d, %v", off, n, err)
		}
	}
	n, err := u.WriteChunk(ctx, 20, bytes.NewReader(make([]byte, 50)))
	var he handler.Error
	if n != 0 || !errors.As(err, &he) || he.HTTPResponse.StatusCode != 400 {
		t.Fatalf("a third part that does not finish: %d, %v", n, err)
	}
	objs, _ := s.blobs.List(ctx, prefix(u.id))
	if len(objs) != 3 { // the state and two parts
		t.Fatalf("%d blobs after the refused part, want 3", len(objs))
	}
	if p, _ := s.Progress(ctx, u.id); p.Offset != 20 || p.Parts != 2 {
		t.Fatalf("Progress = %+v", p)
	}
	if n, err := u.WriteChunk(ctx, 20, bytes.NewReader(make([]byte, 80))); n != 80 || err != nil {
		t.Fatalf("the rest: %d, %v", n, err)
	}
}

func TestCheckPatch(t *testing.T) {
	s := &Store{MaxParts: 10}
	const mib = 1 << 20
	tests := []struct {
		name   string
		p      Progress
		length int64
		ok     bool
	}{
		{"a chunk", Progress{Size: 10 * mib}, 2 * mib, true},
		{"the rest, small", Progress{Size: 100 * mib, Offset: 100*mib - 5}, 5, true},
		{"a tiny chunk", Progress{Size: 100 * mib}, 5, false},
		{"length not announced", Progress{Size: 100 * mib}, -1, true},
		{"large upload, small chunk", Progress{Size: 100 * mib}, 19 * mib, false}, // 100 MiB in at most 5 requests
		{"large upload, chunk of a fifth", Progress{Size: 100 * mib}, 20 * mib, true},
		{"at the cap, not the rest", Progress{Size: 100 * mib, Offset: mib, Parts: 9}, 20 * mib, false},
		{"at the cap, unannounced", Progress{Size: 100 * mib, Offset: mib, Parts: 9}, -1, false},
		{"at the cap, the rest", Progress{Size: 100 * mib, Offset: mib, Parts: 9}, 99 * mib, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CheckPatch(tt.p, tt.length); (err == nil) != tt.ok {
				t.Fatalf("CheckPatch = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// The SDK's requests of a file of any size pass CheckPatch and fit in
// half the parts an upload may have.
func TestSDKChunksFit(t *testing.T) {
	s := &Store{}
	for _, size := range []int64{1, 5 << 20, 2 << 30, 16 << 30, 17 << 30, 100 << 30, 1 << 40, 1<<40 + 12345} {
		chunk := client.UploadChunkFor(size)
		var p Progress
		p.Size = size
		for p.Offset < size {
			n := min(chunk, size-p.Offset)
			if err := s.CheckPatch(p, n); err != nil {
				t.Fatalf("size %d, part %d: %v", size, p.Parts, err)
			}
			p.Offset += n
			p.Parts++
		}
		if p.Parts > DefaultMaxParts/2 {
			t.Fatalf("a %d-byte file takes %d requests; the cap is %d", size, p.Parts, DefaultMaxParts)
		}
	}
}
