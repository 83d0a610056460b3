package s3_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/blob/blobtest"
	"github.com/heraldim/herald/blob/s3"
)

// fakeS3 serves an in-memory S3 on a real local socket, through h if
// non-nil, and returns its host:port.
func fakeS3(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = gofakes3.New(s3mem.New()).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func newStore(t *testing.T, endpoint, prefix string) *s3.Store {
	t.Helper()
	s, err := s3.New(context.Background(), s3.Config{
		Endpoint:  endpoint,
		Bucket:    "herald",
		Region:    "us-east-1",
		AccessKey: "test",
		SecretKey: "testtest",
		Prefix:    prefix,
		PathStyle: true,
		// The smallest parts, so the suite's larger objects and failures
		// span several parts.
		PartSize: s3.MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return newStore(t, fakeS3(t, nil), "")
	})
}

func TestConformancePrefix(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return newStore(t, fakeS3(t, nil), "/herald/node/")
	})
}

// TestPrefixSharesBucket checks that a store with a prefix sees only its own
// objects, and that objects no key could name are not listed.
func TestPrefixSharesBucket(t *testing.T) {
	ctx := context.Background()
	endpoint := fakeS3(t, nil)
	all := newStore(t, endpoint, "")
	mine := newStore(t, endpoint, "herald")
	for _, key := range []string{"herald/files/a", "other/files/b", "files/c"} {
		if _, err := all.Put(ctx, key, strings.NewReader(key)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := mine.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Key != "files/a" {
		t.Errorf("List with prefix = %+v, want files/a only", list)
	}
	o, err := mine.Open(ctx, "files/a")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got, _ := io.ReadAll(io.NewSectionReader(o, 0, o.Size())); string(got) != "herald/files/a" {
		t.Errorf("files/a through the prefix = %q, want %q", got, "herald/files/a")
	}
}

// TestReadAtIsRanged checks that a small read of a large object asks the
// service for exactly that range and nothing else.
func TestReadAtIsRanged(t *testing.T) {
	ctx := context.Background()
	type get struct{ path, rng string }
	var (
		mu   sync.Mutex
		gets []get
	)
	endpoint := fakeS3(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/herald/") {
				mu.Lock()
				gets = append(gets, get{r.URL.Path, r.Header.Get("Range")})
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	s := newStore(t, endpoint, "")

	const size = 8 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if _, err := s.Put(ctx, "files/video", io.MultiReader(bytes.NewReader(content))); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "files/video")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()

	mu.Lock()
	gets = nil // Put and Open may GET for their own reasons
	mu.Unlock()

	const off = size/2 + 3
	p := make([]byte, 10)
	if n, err := o.ReadAt(p, off); n != 10 || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	if !bytes.Equal(p, content[off:off+10]) {
		t.Errorf("ReadAt = %q, want %q", p, content[off:off+10])
	}
	want := []get{{"/herald/files/video", "bytes=4194307-4194316"}}
	mu.Lock()
	defer mu.Unlock()
	if len(gets) != len(want) || gets[0] != want[0] {
		t.Errorf("GETs for a 10-byte ReadAt = %+v, want %+v", gets, want)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  s3.Config
		want string
	}{
		{"no endpoint", s3.Config{Bucket: "b"}, "endpoint"},
		{"no bucket", s3.Config{Endpoint: "127.0.0.1:1"}, "bucket"},
		{"small parts", s3.Config{Endpoint: "127.0.0.1:1", Bucket: "b", PartSize: 1 << 20}, "part size"},
	}
	for _, tc := range tests {
		_, err := s3.New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error about %s", tc.name, err, tc.want)
		}
	}
}
