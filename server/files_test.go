package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
	"github.com/heraldim/herald/server"
)

// startFilesNode starts a node whose configuration a test adjusts.
func startFilesNode(t *testing.T, dir string, adjust func(*server.Config)) *server.Node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, PasswordCost: cheap, AbuseLimits: lax,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if adjust != nil {
		adjust(&cfg)
	}
	n, err := server.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Serve()
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func upload(t *testing.T, d *device, name string, data []byte) *pb.File {
	t.Helper()
	f, err := d.UploadFile(ctxT(t), bytes.NewReader(data), int64(len(data)), client.UploadOptions{Name: name})
	if err != nil {
		t.Fatalf("%s uploads %s: %v", d.user.name, name, err)
	}
	return f
}

// get fetches a file over plain HTTP with the device's bearer token and
// optional extra headers.
func get(t *testing.T, n *server.Node, token, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, n.URL()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// failingFile fails reads that cross a position once armed: an upload
// cut off in the middle of a chunk, as when a laptop's network drops.
type failingFile struct {
	*bytes.Reader
	at    int64
	armed bool
}

func (f *failingFile) Read(p []byte) (int, error) {
	pos, _ := f.Seek(0, io.SeekCurrent)
	if f.armed && pos+int64(len(p)) > f.at {
		if pos >= f.at {
			return 0, errors.New("network down")
		}
		p = p[:f.at-pos]
	}
	return f.Reader.Read(p)
}

type memResume map[string]string

func (m memResume) Get(k string) (string, bool) { v, ok := m[k]; return v, ok }
func (m memResume) Put(k, v string) error       { m[k] = v; return nil }
func (m memResume) Delete(k string) error       { delete(m, k); return nil }

func TestFileUploadResumesAndComesBackIdentical(t *testing.T) {
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	data := randomBytes(50<<20, 1)
	resume := memResume{}
	// 50 MiB through the race detector on a loaded machine takes a while;
	// the ceiling only stops a hung test.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The first attempt breaks off in the middle of the third chunk.
	src := &failingFile{Reader: bytes.NewReader(data), at: 2*client.UploadChunk + 12345}
	_, err := alice.UploadFile(ctx, src, int64(len(data)), client.UploadOptions{
		Name: "film.bin", Resume: resume,
		Progress: func(done, total int64) { src.armed = true }, // after hashing, before sending
	})
	if err == nil {
		t.Fatal("the interrupted upload reported success")
	}
	if len(resume) != 1 {
		t.Fatalf("the unfinished upload was not remembered: %v", resume)
	}

	// The second attempt continues where the server says the first stopped.
	var first int64 = -1
	f, err := alice.UploadFile(ctx, bytes.NewReader(data), int64(len(data)), client.UploadOptions{
		Name: "film.bin", Resume: resume,
		Progress: func(done, total int64) {
			if first < 0 {
				first = done
			}
		},
	})
	if err != nil {
		t.Fatalf("resumed upload: %v", err)
	}
	if first < 2*client.UploadChunk {
		t.Fatalf("the upload restarted at %d instead of resuming after the %d bytes already sent", first, 2*client.UploadChunk)
	}
	if f.Sha256 != sha(data) || f.Size != int64(len(data)) {
		t.Fatalf("file = %v", f)
	}
	if len(resume) != 0 {
		t.Fatalf("a finished upload is still remembered: %v", resume)
	}

	m, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), Text: "the cut", FileId: f.Id})
	if err != nil {
		t.Fatal(err)
	}
	got := nextMessage(t, bobby)
	if got.Id != m.Id || got.File.GetId() != f.Id || got.Text != "the cut" || got.File.Name != "film.bin" {
		t.Fatalf("bobby received %v", got)
	}

	// Through the SDK, interrupted and resumed by offset...
	var buf bytes.Buffer
	buf.Write(data[:1234567]) // what an earlier, broken download left
	if _, _, err := bobby.DownloadRange(ctx, f.Id, int64(buf.Len()), &buf, nil); err != nil {
		t.Fatal(err)
	}
	if sha(buf.Bytes()) != sha(data) {
		t.Fatal("the resumed SDK download differs from the upload")
	}
	// ...and through plain HTTP.
	resp, body := get(t, n, bobby.token, "/v1/files/"+f.Id)
	if resp.StatusCode != 200 || sha(body) != sha(data) {
		t.Fatalf("HTTP download: status %d, identical %v", resp.StatusCode, sha(body) == sha(data))
	}
}

func TestFileRanges(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	data := randomBytes(300_000, 2) // several 64 KiB encryption chunks and a partial one
	f := upload(t, alice, "data.bin", data)
	size := len(data)
	cases := []struct {
		name, rng string
		status    int
		from, to  int // inclusive, for 206
	}{
		{"start", "bytes=0-9", 206, 0, 9},
		{"middle", "bytes=150000-150099", 206, 150000, 150099},
		{"end", fmt.Sprintf("bytes=%d-%d", size-10, size-1), 206, size - 10, size - 1},
		{"across a chunk boundary", "bytes=65530-65545", 206, 65530, 65545},
		{"across two boundaries", "bytes=65000-132000", 206, 65000, 132000},
		{"open ended", "bytes=299000-", 206, 299000, size - 1},
		{"suffix", "bytes=-500", 206, size - 500, size - 1},
		{"end past the file is clamped", fmt.Sprintf("bytes=%d-%d", size-5, size+100), 206, size - 5, size - 1},
		{"start past the end", fmt.Sprintf("bytes=%d-", size), 416, 0, 0},
		{"backwards", "bytes=10-5", 416, 0, 0},
		{"garbage", "bytes=abc", 416, 0, 0},
		{"wrong unit", "lines=1-2", 416, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, n, alice.token, "/v1/files/"+f.Id, "Range", c.rng)
			if resp.StatusCode != c.status {
				t.Fatalf("Range %s: status %d, want %d", c.rng, resp.StatusCode, c.status)
			}
			if c.status == 416 {
				if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes */%d", size) && c.name == "start past the end" {
					t.Errorf("416 Content-Range = %q", cr)
				}
				return
			}
			if !bytes.Equal(body, data[c.from:c.to+1]) {
				t.Fatalf("Range %s returned %d bytes, not bytes %d-%d", c.rng, len(body), c.from, c.to)
			}
			if cr, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", c.from, c.to, size); cr != want {
				t.Errorf("Content-Range = %q, want %q", cr, want)
			}
		})
	}

	t.Run("ETag and If-None-Match", func(t *testing.T) {
		resp, _ := get(t, n, alice.token, "/v1/files/"+f.Id)
		etag := resp.Header.Get("ETag")
		if etag == "" || resp.Header.Get("Accept-Ranges") != "bytes" {
			t.Fatalf("ETag %q, Accept-Ranges %q", etag, resp.Header.Get("Accept-Ranges"))
		}
		resp, body := get(t, n, alice.token, "/v1/files/"+f.Id, "If-None-Match", etag)
		if resp.StatusCode != 304 || len(body) != 0 {
			t.Fatalf("If-None-Match: status %d, %d bytes", resp.StatusCode, len(body))
		}
	})
	t.Run("several ranges get the whole file", func(t *testing.T) {
		resp, body := get(t, n, alice.token, "/v1/files/"+f.Id, "Range", "bytes=0-1,5-6")
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("multi-range: status %d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

func TestFileHeadersAreSafe(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	f := upload(t, alice, "../../etc/evil\"\r\nX-Injected: yes\r\n.html", []byte("<html><script>alert(1)</script></html>"))
	if strings.ContainsAny(f.Name, "/\\\r\n\"") {
		t.Fatalf("stored name %q keeps path or control characters", f.Name)
	}
	resp, _ := get(t, n, alice.token, "/v1/files/"+f.Id)
	if resp.Header.Get("X-Injected") != "" {
		t.Fatal("a file name injected a header")
	}
	cd := resp.Header.Get("Content-Disposition")
	if !strings.HasPrefix(cd, "attachment") || strings.ContainsAny(cd, "\r\n") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "html") {
		t.Errorf("an uploaded page is served as %q", ct)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("missing nosniff or sandbox: %v", resp.Header)
	}
	if f.Kind != "document" {
		t.Errorf("kind = %q, want document", f.Kind)
	}
}

func TestFileAuthorization(t *testing.T) {
	n := startNode(t, "")
	alice, bobby, carol := signup(t, n, "alice"), signup(t, n, "bobby"), signup(t, n, "carol")
	data := []byte("the plan, for bobby only")
	f := upload(t, alice, "plan.txt", data)

	// Before it is sent, only the uploader can read it.
	if resp, _ := get(t, n, bobby.token, "/v1/files/"+f.Id); resp.StatusCode != 404 {
		t.Fatalf("bobby read an unsent file: %d", resp.StatusCode)
	}
	if _, err := bobby.Send(ctxT(t), &pb.SendRequest{Peer: to(carol.user.name), Text: "x", FileId: f.Id}); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("bobby attached alice's unsent file: %v", err)
	}
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), FileId: f.Id}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		token  string
		path   string
		status int
	}{
		{"the sender", alice.token, "/v1/files/" + f.Id, 200},
		{"the recipient", bobby.token, "/v1/files/" + f.Id, 200},
		{"a stranger with the id", carol.token, "/v1/files/" + f.Id, 404},
		{"a stranger guessing", carol.token, "/v1/files/" + strings.Repeat("a", 32), 404},
		{"a malformed id", carol.token, "/v1/files/..%2f..%2fmaster.key", 404},
		{"no token", "", "/v1/files/" + f.Id, 401},
		{"a bad token", "not-a-token", "/v1/files/" + f.Id, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, n, c.token, c.path)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			if c.status == 200 && !bytes.Equal(body, data) {
				t.Fatal("wrong bytes")
			}
			if c.status != 200 && bytes.Contains(body, data) {
				t.Fatal("an error answer leaked the content")
			}
		})
	}
	if _, err := carol.FileInfo(ctxT(t), f.Id); !herald.IsKind(err, herald.NotFound) {
		t.Fatalf("carol read the file's metadata: %v", err)
	}
	// Bobby forwards the file to carol without uploading it again; now
	// she may read it.
	if _, err := bobby.Send(ctxT(t), &pb.SendRequest{Peer: to(carol.user.name), Text: "fyi", FileId: f.Id}); err != nil {
		t.Fatalf("forwarding a received file: %v", err)
	}
	if resp, body := get(t, n, carol.token, "/v1/files/"+f.Id); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("carol after the forward: %d", resp.StatusCode)
	}

	t.Run("signed links", func(t *testing.T) {
		link, _, err := bobby.FileLink(ctxT(t), f.Id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		path := strings.TrimPrefix(link, n.URL())
		if resp, body := get(t, n, "", path); resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("signed link: status %d", resp.StatusCode)
		}
		if strings.Contains(link, bobby.token) {
			t.Fatal("the link carries the token")
		}
		tampered := strings.Replace(path, "u=", "u=1", 1)
		if resp, _ := get(t, n, "", tampered); resp.StatusCode != 404 {
			t.Fatalf("a tampered link: status %d, want 404", resp.StatusCode)
		}
		if _, _, err := carol.FileLink(ctxT(t), strings.Repeat("b", 32), time.Minute); !herald.IsKind(err, herald.NotFound) {
			t.Fatalf("a link to a file carol cannot read: %v", err)
		}
		// A link that expires within the second it is made.
		short, _, err := bobby.FileLink(ctxT(t), f.Id, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if resp, body := get(t, n, "", strings.TrimPrefix(short, n.URL())); resp.StatusCode != 403 || !strings.Contains(string(body), "expired") {
			t.Fatalf("an expired link: status %d %s", resp.StatusCode, body)
		}
	})
}

// tusPost creates an upload with raw tus requests and returns its URL.
func tusPost(t *testing.T, n *server.Node, token string, size int, meta map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL()+"/v1/uploads/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(size))
	var pairs []string
	for k, v := range meta {
		pairs = append(pairs, k+" "+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	req.Header.Set("Upload-Metadata", strings.Join(pairs, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestFileBadInput(t *testing.T) {
	dir := t.TempDir()
	n := startFilesNode(t, dir, func(c *server.Config) { c.MaxFileSize = 1 << 20; c.StorageQuota = 3 << 20 })
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")

	t.Run("over the size limit", func(t *testing.T) {
		big := randomBytes(2<<20, 3)
		_, err := alice.UploadFile(ctxT(t), bytes.NewReader(big), int64(len(big)), client.UploadOptions{Name: "big"})
		if !herald.IsKind(err, herald.TooLarge) {
			t.Fatalf("err = %v, want TOO_LARGE", err)
		}
		assertNoUploads(t, dir)
	})
	t.Run("over the quota", func(t *testing.T) {
		for i := range 3 {
			upload(t, alice, "part", randomBytes(1<<20, uint64(10+i)))
		}
		_, err := alice.UploadFile(ctxT(t), bytes.NewReader([]byte("one more")), 8, client.UploadOptions{Name: "x"})
		if !herald.IsKind(err, herald.TooLarge) || !strings.Contains(herald.ErrorMessage(err), "quota") {
			t.Fatalf("err = %v, want TOO_LARGE about the quota", err)
		}
	})
	t.Run("checksum mismatch", func(t *testing.T) {
		body := []byte("what was sent")
		resp := tusPost(t, n, bobby.token, len(body), map[string]string{"filename": "x", "sha256": sha([]byte("something else"))})
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d", resp.StatusCode)
		}
		loc := resp.Header.Get("Location")
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPatch, loc, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bobby.token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		pr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(pr.Body)
		pr.Body.Close()
		if pr.StatusCode != 400 || !strings.HasPrefix(string(msg), "INVALID_ARGUMENT") {
			t.Fatalf("mismatch: status %d %q", pr.StatusCode, msg)
		}
		id := loc[strings.LastIndex(loc, "/")+1:]
		if _, err := bobby.Send(ctxT(t), &pb.SendRequest{Peer: to(alice.user.name), FileId: id}); !herald.IsKind(err, herald.NotFound) {
			t.Fatalf("attaching the damaged upload: %v", err)
		}
	})
	t.Run("no checksum", func(t *testing.T) {
		if resp := tusPost(t, n, bobby.token, 10, map[string]string{"filename": "x"}); resp.StatusCode != 400 {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("someone else's upload", func(t *testing.T) {
		resp := tusPost(t, n, bobby.token, 10, map[string]string{"filename": "x", "sha256": sha([]byte("0123456789"))})
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodHead, resp.Header.Get("Location"), nil)
		req.Header.Set("Authorization", "Bearer "+alice.token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		hr, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		hr.Body.Close()
		if hr.StatusCode != 404 {
			t.Fatalf("alice saw bobby's upload: %d", hr.StatusCode)
		}
	})
	t.Run("unauthenticated upload", func(t *testing.T) {
		if resp := tusPost(t, n, "", 10, map[string]string{"sha256": sha([]byte("0123456789"))}); resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("caption too long", func(t *testing.T) {
		f := upload(t, bobby, "c.txt", []byte("caption test"))
		_, err := bobby.Send(ctxT(t), &pb.SendRequest{Peer: to(alice.user.name), FileId: f.Id, Text: strings.Repeat("x", herald.MaxCaptionRunes+1)})
		if !herald.IsKind(err, herald.TooLarge) {
			t.Fatalf("err = %v, want TOO_LARGE", err)
		}
	})
}

func assertNoUploads(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "uploads") {
			t.Errorf("an upload refused for its size left %s", p)
		}
		return nil
	})
}

func TestFileNoPlaintextInDataDir(t *testing.T) {
	dir := t.TempDir()
	n := startFilesNode(t, dir, nil)
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	marker := []byte("HERALD-PLAINTEXT-MARKER-7f3a9c")
	data := bytes.Repeat(append(marker, randomBytes(97, 4)...), 200_000) // ~25 MiB, several upload chunks

	// One upload finished and sent, one left halfway.
	f := upload(t, alice, "secret.bin", data)
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), FileId: f.Id}); err != nil {
		t.Fatal(err)
	}
	other := append(bytes.Clone(data[:10<<20]), 1)
	src := &failingFile{Reader: bytes.NewReader(other), at: client.UploadChunk + 999}
	alice.UploadFile(ctxT(t), src, int64(len(other)), client.UploadOptions{Name: "half", Progress: func(int64, int64) { src.armed = true }})

	// Photos' thumbnails hold the picture too.
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	var pbuf bytes.Buffer
	png.Encode(&pbuf, img)
	upload(t, alice, "p.png", pbuf.Bytes())

	n.Shutdown(context.Background())
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, marker) {
			t.Errorf("%s holds the file's plaintext", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFilePhotoThumbnail(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	img := image.NewRGBA(image.Rect(0, 0, 1000, 500))
	for y := range 500 {
		for x := range 1000 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	// The client calls it a PDF; the server looks at the bytes.
	f := upload(t, alice, "holiday.pdf", buf.Bytes())
	if f.Kind != "photo" || f.Mime != "image/png" || f.Width != 1000 || f.Height != 500 {
		t.Fatalf("file = %v", f)
	}
	info, err := alice.FileInfo(ctxT(t), f.Id)
	if err != nil || !info.Thumb {
		t.Fatalf("FileInfo: %v %v", info, err)
	}
	resp, body := get(t, n, alice.token, "/v1/files/"+f.Id+"?thumb=1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("thumbnail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	th, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if b := th.Bounds(); b.Dx() != herald.ThumbSize || b.Dy() != herald.ThumbSize/2 {
		t.Fatalf("thumbnail is %v, want %dx%d", b, herald.ThumbSize, herald.ThumbSize/2)
	}
	// A document has none.
	doc := upload(t, alice, "notes.txt", []byte("plain notes"))
	if resp, _ := get(t, n, alice.token, "/v1/files/"+doc.Id+"?thumb=1"); resp.StatusCode != 404 {
		t.Fatalf("a document's thumbnail: %d", resp.StatusCode)
	}
}

func TestFileKinds(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	mp4 := append([]byte{0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0, 'i', 's', 'o', 'm', 'i', 's', 'o', '2'}, make([]byte, 100)...)
	webm := append([]byte{0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2, 0x81, 0x04, 0x42, 0xf3, 0x81, 0x08, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm'}, make([]byte, 100)...)
	opus := append([]byte("OggS\x00\x02"), append(make([]byte, 22), []byte("OpusHead\x01\x01")...)...)
	mp3 := append([]byte("ID3\x03\x00\x00\x00\x00\x00\x00"), make([]byte, 100)...)
	mov := append([]byte{0, 0, 0, 0x14, 'f', 't', 'y', 'p', 'q', 't', ' ', ' ', 0, 0, 2, 0, 'q', 't', ' ', ' '}, make([]byte, 100)...)
	cases := []struct {
		name string
		data []byte
		kind string
		mime string
	}{
		{"clip.mp4", mp4, "video", "video/mp4"},
		{"clip.mov", mov, "video", "video/quicktime"},
		{"clip.webm", webm, "video", "video/webm"},
		{"voice.ogg", opus, "voice", "audio/ogg"},
		{"song.mp3", mp3, "audio", "audio/mpeg"},
		{"report.pdf", []byte("%PDF-1.7\n%âãÏÓ\n1 0 obj\n"), "document", "application/pdf"},
		{"photo.jpg", []byte("this is not a jpeg at all"), "document", "text/plain; charset=utf-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := upload(t, alice, c.name, c.data)
			if f.Kind != c.kind || f.Mime != c.mime {
				t.Fatalf("kind %q mime %q, want %q %q", f.Kind, f.Mime, c.kind, c.mime)
			}
		})
	}
}

func TestFileDiesWithItsMessage(t *testing.T) {
	dir := t.TempDir()
	n := startFilesNode(t, dir, func(c *server.Config) { c.SweepEvery = 100 * time.Millisecond; c.BucketWidth = time.Second })
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")
	g, err := alice.CreateGroup(ctxT(t), "secret plans", []string{bobby.user.name})
	if err != nil {
		t.Fatal(err)
	}
	f := upload(t, alice, "plan.bin", randomBytes(100_000, 5))
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: &pb.Peer{ChatId: g.Id}, FileId: f.Id, TtlMs: 1000}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, n, bobby.token, "/v1/files/"+f.Id); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, _ := get(t, n, alice.token, "/v1/files/"+f.Id)
		_, statErr := os.Stat(filepath.Join(dir, "blobs", "files", f.Id))
		if resp.StatusCode == 404 && errors.Is(statErr, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file outlived its message: status %d, blob %v", resp.StatusCode, statErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, _ := get(t, n, bobby.token, "/v1/files/"+f.Id); resp.StatusCode != 404 {
		t.Fatalf("bobby after expiry: %d", resp.StatusCode)
	}
}

// An upload whose last answer never reached the client: running the
// upload again finds the file by the upload's id instead of sending the
// content again.
func TestFileUploadLastAnswerLost(t *testing.T) {
	n := startNode(t, "")
	alice := signup(t, n, "alice")
	data := randomBytes(200_000, 9)
	resp := tusPost(t, n, alice.token, len(data), map[string]string{"filename": "lost.bin", "sha256": sha(data)})
	loc := resp.Header.Get("Location")
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPatch, loc, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+alice.token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	pr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close() // the answer, with the file's id, is "lost"
	if pr.StatusCode != 200 {
		t.Fatalf("final PATCH: %d", pr.StatusCode)
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	resume := memResume{fmt.Sprintf("%s-%d", sha(data), len(data)): loc}
	var sent int64 = -1
	f, err := alice.UploadFile(ctxT(t), bytes.NewReader(data), int64(len(data)), client.UploadOptions{
		Name: "lost.bin", Resume: resume,
		Progress: func(done, total int64) {
			if sent < 0 {
				sent = done
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.Id != id || sent != int64(len(data)) {
		t.Fatalf("file %s (want %s), first progress %d: the content was sent again", f.Id, id, sent)
	}
	if resp, _ := get(t, n, alice.token, "/v1/uploads/"+id); resp.StatusCode == 200 {
		t.Fatal("the finished upload is still there")
	}
}

// TestFileQuotaCountsUnfinishedUploads: uploads started at once cannot
// together take more than the quota that each fits alone; a cancelled
// upload frees its share, and a finished one counts as its file.
func TestFileQuotaCountsUnfinishedUploads(t *testing.T) {
	n := startFilesNode(t, t.TempDir(), func(c *server.Config) { c.MaxFileSize = 1 << 20; c.StorageQuota = 3 << 20 })
	carol := signup(t, n, "carol")
	meta := map[string]string{"filename": "x", "sha256": sha([]byte("not sent yet"))}
	var locs []string
	for i := range 3 {
		resp := tusPost(t, n, carol.token, 1<<20, meta)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("upload %d of three that fit: status %d", i+1, resp.StatusCode)
		}
		locs = append(locs, resp.Header.Get("Location"))
	}
	if resp := tusPost(t, n, carol.token, 1, meta); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a fourth upload while three unfinished fill the quota: status %d, want 413", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodDelete, locs[0], nil)
	req.Header.Set("Authorization", "Bearer "+carol.token)
	req.Header.Set("Tus-Resumable", "1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel: status %d", resp.StatusCode)
	}
	// The cancelled upload's megabyte is free again, and this upload
	// counts as its file once finished.
	upload(t, carol, "fits", randomBytes(1<<20, 99))
	_, err = carol.UploadFile(ctxT(t), bytes.NewReader([]byte("one more")), 8, client.UploadOptions{Name: "x"})
	if !herald.IsKind(err, herald.TooLarge) || !strings.Contains(herald.ErrorMessage(err), "unfinished uploads") {
		t.Fatalf("with two unfinished uploads and a file filling the quota: %v", err)
	}
}
