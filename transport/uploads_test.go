package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/blob/dir"
	"github.com/heraldim/herald/bus/memory"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/store/sqlite"
)

// filesServer is a transport with file endpoints over a real SQLite file
// and blob directory, served on a loopback socket.
type filesServer struct {
	tr    *Server
	srv   *httptest.Server
	token string
}

func startFiles(t testing.TB) *filesServer {
	t.Helper()
	ctx := context.Background()
	d := t.TempDir()
	db, err := sqlite.Open(filepath.Join(d, "herald.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := dir.New(filepath.Join(d, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	sealer, err := crypto.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	b := memory.New()
	svc := service.New(service.Config{Store: db, Bus: b, Sealer: sealer, Blobs: blobs,
		PasswordCost: service.PasswordCost{Time: 1, MemoryK: 64, Threads: 1}})
	sess, err := svc.Signup(ctx, "alice", "long enough password", "", "phone", "")
	if err != nil {
		t.Fatal(err)
	}
	tr := New(svc, b, slog.New(slog.NewTextHandler(io.Discard, nil)), Limits{})
	if err := tr.EnableFiles(Files{Blobs: blobs, Sealer: sealer}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tr.Handler())
	t.Cleanup(srv.Close)
	return &filesServer{tr: tr, srv: srv, token: sess.Token}
}

// do sends one tus request and returns its status, body and headers.
func (fs *filesServer) do(t testing.TB, method, url string, body []byte, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+fs.token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	if method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (fs *filesServer) create(t testing.TB, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("x.bin")) + ",sha256 " + base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
	status, body, h := fs.do(t, http.MethodPost, fs.srv.URL+"/v1/uploads/", nil, "Upload-Length", strconv.Itoa(len(data)), "Upload-Metadata", meta)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	return h.Get("Location")
}

func (fs *filesServer) offset(t testing.TB, url string) int64 {
	t.Helper()
	status, body, h := fs.do(t, http.MethodHead, url, nil)
	if status != 200 {
		t.Fatalf("HEAD: %d %s", status, body)
	}
	n, _ := strconv.ParseInt(h.Get("Upload-Offset"), 10, 64)
	return n
}

// cutPatch sends a PATCH that announces length bytes, sends only body,
// and stops sending, as a dropped connection does. It returns once the
// server has answered and closed the connection: the request is over,
// its upload unlocked. (Asking about the upload while the request still
// holds its lock would make tusd interrupt it, which races inside tusd.)
func (fs *filesServer) cutPatch(t testing.TB, url string, off int64, length int, body []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(fs.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer %s\r\nTus-Resumable: 1.0.0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: %d\r\nContent-Length: %d\r\n\r\n",
		strings.TrimPrefix(url, fs.srv.URL), fs.token, off, length)
	c.Write(body)
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(time.Minute)) // only against a hung test
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the server did not finish the cut-off PATCH: %v", err)
	}
}

// Issue 22, item 8: every PATCH becomes a part and rewrites the upload's
// whole state; about 13,000 tiny ones made the state too large to load,
// after which the upload could be neither resumed nor deleted. Tiny
// PATCHes are refused, the parts of an upload are capped, and an upload
// at the cap is still finished by a client that sends the rest in one
// request, or deleted.
func TestTinyPatchesAreRefused(t *testing.T) {
	fs := startFiles(t)
	fs.tr.files.uploads.MaxParts = 6
	data := make([]byte, 3<<20)
	rand.Read(data)
	url := fs.create(t, data)

	status, body, _ := fs.do(t, http.MethodPatch, url, data[:10], "Upload-Offset", "0")
	if status != 400 || !strings.HasPrefix(body, "INVALID_ARGUMENT: ") || !strings.Contains(body, "at least 1.0 MiB") {
		t.Fatalf("a 10-byte PATCH of a 3 MiB upload: %d %q, want 400 asking for at least 1 MiB", status, body)
	}
	status, body, _ = fs.do(t, http.MethodPost, url, data[:10], "Upload-Offset", "0", "X-HTTP-Method-Override", "PATCH",
		"Content-Type", "application/offset+octet-stream")
	if status != 400 || !strings.Contains(body, "at least 1.0 MiB") {
		t.Fatalf("a 10-byte PATCH as a POST with X-HTTP-Method-Override: %d %q, want 400", status, body)
	}
	if off := fs.offset(t, url); off != 0 {
		t.Fatalf("the refused PATCH stored %d bytes", off)
	}

	// Interrupted requests still make (small) parts, up to the cap.
	var off int64
	for range 5 {
		fs.cutPatch(t, url, off, 1<<20, data[off:off+100])
		off += 100
		if got := fs.offset(t, url); got != off {
			t.Fatalf("after a cut-off PATCH the offset is %d, want %d", got, off)
		}
	}
	status, body, _ = fs.do(t, http.MethodPatch, url, data[off:off+1<<20], "Upload-Offset", strconv.FormatInt(off, 10))
	if status != 400 || !strings.Contains(body, "send the rest") {
		t.Fatalf("a 1 MiB PATCH at the cap: %d %q, want 400 asking for the rest", status, body)
	}
	// At the cap, a request that breaks off is not kept: the client
	// resumes from where it was.
	fs.cutPatch(t, url, off, len(data)-int(off), data[off:off+1000])
	if got := fs.offset(t, url); got != off {
		t.Fatalf("after a broken request at the cap the offset is %d, want %d", got, off)
	}

	// A well-behaved client sends the rest and gets its file.
	status, body, h := fs.do(t, http.MethodPatch, url, data[off:], "Upload-Offset", strconv.FormatInt(off, 10))
	if status != 200 || h.Get("Herald-File-Id") == "" {
		t.Fatalf("the rest in one request: %d %q", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, fs.srv.URL+"/v1/files/"+h.Get("Herald-File-Id"), nil)
	req.Header.Set("Authorization", "Bearer "+fs.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("the file differs from what was sent (%d bytes)", len(got))
	}

	// Another upload at the cap can be deleted.
	url = fs.create(t, data)
	off = 0
	for range 5 {
		fs.cutPatch(t, url, off, 1<<20, data[off:off+10])
		off += 10
	}
	if status, body, _ := fs.do(t, http.MethodDelete, url, nil); status != 204 {
		t.Fatalf("DELETE at the cap: %d %q", status, body)
	}
	if status, _, _ := fs.do(t, http.MethodHead, url, nil); status != 404 {
		t.Fatalf("HEAD after DELETE: %d", status)
	}
}
