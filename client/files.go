package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldim/herald"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// UploadChunk is how many bytes one PATCH request carries: a cut-off
// upload loses at most this much work, and progress is reported at least
// this often.
const UploadChunk = 8 << 20

// UploadChunkFor is how many bytes one PATCH request carries for a file
// of size bytes: UploadChunk, or more for files over 16 GiB, because the
// server takes at most 4096 parts per upload and asks requests that do
// not finish one to carry at least a 2048th of it.
func UploadChunkFor(size int64) int64 {
	return max(UploadChunk, (size+2047)/2048)
}

// Progress is called with the bytes done so far and the total.
type Progress func(done, total int64)

// UploadOptions describe a file to upload.
type UploadOptions struct {
	Name     string
	Width    int // for videos: the client's knowledge, kept as given
	Height   int
	Duration time.Duration
	Progress Progress
	// Resume remembers unfinished uploads so a later call for the same
	// content continues one instead of starting over (nil: no memory
	// beyond this call).
	Resume ResumeStore
}

// ResumeStore remembers where unfinished uploads live, keyed by the
// content's SHA-256 and size.
type ResumeStore interface {
	Get(key string) (url string, ok bool)
	Put(key, url string) error
	Delete(key string) error
}

// httpBase is the server's HTTP base URL.
func (c *Client) httpBase() string {
	return strings.TrimRight(c.opts.Server, "/")
}

// UploadFile uploads the content of r (size bytes) with the tus protocol
// and returns the file, ready to send with SendRequest.FileId. It first
// hashes the content (the server checks the SHA-256 before the file can
// be used), then sends it in chunks; if an earlier attempt for the same
// content left an unfinished upload in opts.Resume, it continues from
// where the server says that one stopped.
func (c *Client) UploadFile(ctx context.Context, r io.ReadSeeker, size int64, opts UploadOptions) (*pb.File, error) {
	h := sha256.New()
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if n, err := io.Copy(h, r); err != nil {
		return nil, err
	} else if n != size {
		return nil, herald.Errorf(herald.Invalid, "the file has %d bytes, not %d: did it change while being read?", n, size)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	key := fmt.Sprintf("%s-%d", sum, size)
	progress := opts.Progress
	if progress == nil {
		progress = func(int64, int64) {}
	}

	var loc string
	var off int64 = -1
	if opts.Resume != nil {
		if u, ok := opts.Resume.Get(key); ok {
			loc = u
			o, err := c.uploadOffset(ctx, loc)
			switch {
			case err == nil && o < size:
				off = o
			case err == nil || herald.IsKind(err, herald.NotFound):
				// Finished (its last answer lost), swept, or complete but
				// never made a file (the server stopped in between). The
				// file of a finished upload has the upload's id.
				if f := c.finishedFile(ctx, loc[strings.LastIndex(loc, "/")+1:], sum, opts.Name); f != nil {
					opts.Resume.Delete(key)
					progress(size, size)
					return f, nil
				}
				loc = ""
			default:
				return nil, err
			}
		}
	}
	if loc == "" {
		var err error
		if loc, err = c.createUpload(ctx, size, sum, opts); err != nil {
			return nil, err
		}
		off = 0
		if opts.Resume != nil {
			if err := opts.Resume.Put(key, loc); err != nil {
				return nil, err
			}
		}
	}
	progress(off, size)
	for {
		n := min(UploadChunkFor(size), size-off)
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
		next, file, err := c.patch(ctx, loc, off, io.LimitReader(r, n), n)
		if err != nil {
			return nil, err
		}
		off = next
		progress(off, size)
		if file != nil {
			if opts.Resume != nil {
				opts.Resume.Delete(key)
			}
			return file, nil
		}
	}
}

// finishedFile looks for the file an upload became, over plain HTTP (an
// SDK used only for files need not have its WebSocket up): the file of a
// finished upload has the upload's id, and its ETag is the SHA-256.
func (c *Client) finishedFile(ctx context.Context, id, sum, name string) *pb.File {
	resp, err := doHTTP(ctx, &httpRequest{method: "HEAD", url: c.httpBase() + "/v1/files/" + id,
		header: map[string]string{"Authorization": "Bearer " + c.Token()}})
	if err != nil {
		return nil
	}
	drain(resp)
	if resp.status != statusOK || strings.Trim(resp.header("ETag"), `"`) != sum {
		return nil
	}
	return &pb.File{Id: id, Name: name, Size: resp.length, Mime: resp.header("Content-Type"), Sha256: sum}
}

// tusHeader is the header of an upload request: the token and the tus
// version, then extra's pairs.
func (c *Client) tusHeader(extra ...string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + c.Token(), "Tus-Resumable": "1.0.0"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func (c *Client) createUpload(ctx context.Context, size int64, sum string, opts UploadOptions) (string, error) {
	meta := []string{"filename " + b64(filepath.Base(opts.Name)), "sha256 " + b64(sum)}
	if opts.Width > 0 && opts.Height > 0 {
		meta = append(meta, "width "+b64(strconv.Itoa(opts.Width)), "height "+b64(strconv.Itoa(opts.Height)))
	}
	if opts.Duration > 0 {
		meta = append(meta, "duration_ms "+b64(strconv.FormatInt(opts.Duration.Milliseconds(), 10)))
	}
	resp, err := doHTTP(ctx, &httpRequest{method: "POST", url: c.httpBase() + "/v1/uploads/",
		header: c.tusHeader("Upload-Length", strconv.FormatInt(size, 10), "Upload-Metadata", strings.Join(meta, ","))})
	if err != nil {
		return "", herald.Errorf(herald.Unavailable, "cannot reach the server: %v", err)
	}
	defer drain(resp)
	if resp.status != statusCreated {
		return "", responseError(resp)
	}
	loc := resp.header("Location")
	if loc == "" {
		return "", herald.Errorf(herald.Internal, "the server created the upload but did not say where")
	}
	// The server names the upload by its own idea of its address; keep
	// the path and talk to the address this client was given.
	if i := strings.Index(loc, "/v1/uploads/"); i >= 0 {
		loc = c.httpBase() + loc[i:]
	}
	return loc, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (c *Client) uploadOffset(ctx context.Context, loc string) (int64, error) {
	resp, err := doHTTP(ctx, &httpRequest{method: "HEAD", url: loc, header: c.tusHeader()})
	if err != nil {
		return 0, herald.Errorf(herald.Unavailable, "cannot reach the server: %v", err)
	}
	defer drain(resp)
	if resp.status == statusNotFound || resp.status == statusGone {
		return 0, herald.Errorf(herald.NotFound, "no such upload")
	}
	if resp.status != statusOK && resp.status != statusNoContent {
		return 0, responseError(resp)
	}
	return strconv.ParseInt(resp.header("Upload-Offset"), 10, 64)
}

// patch sends one chunk and returns the server's new offset, and the
// file when this chunk completed the upload.
func (c *Client) patch(ctx context.Context, loc string, off int64, body io.Reader, n int64) (int64, *pb.File, error) {
	resp, err := doHTTP(ctx, &httpRequest{method: "PATCH", url: loc, body: body, length: n,
		header: c.tusHeader("Content-Type", "application/offset+octet-stream", "Upload-Offset", strconv.FormatInt(off, 10))})
	if err != nil {
		return 0, nil, herald.Errorf(herald.Unavailable, "the upload was interrupted (%v); run it again to resume", err)
	}
	defer drain(resp)
	if resp.status != statusNoContent && resp.status != statusOK {
		return 0, nil, responseError(resp)
	}
	next, err := strconv.ParseInt(resp.header("Upload-Offset"), 10, 64)
	if err != nil {
		return 0, nil, herald.Errorf(herald.Internal, "the server's answer has no Upload-Offset")
	}
	if id := resp.header("Herald-File-Id"); id != "" {
		var f jsonFileWire
		if err := json.NewDecoder(io.LimitReader(resp.body, 1<<16)).Decode(&f); err != nil {
			return next, nil, herald.Errorf(herald.Internal, "the server's answer does not describe the file: %v", err)
		}
		return next, f.proto(), nil
	}
	return next, nil, nil
}

// jsonFileWire is the file as the upload's last answer describes it.
type jsonFileWire struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Size     int64   `json:"size"`
	MIME     string  `json:"mime"`
	Kind     string  `json:"kind"`
	SHA256   string  `json:"sha256"`
	Width    int32   `json:"width"`
	Height   int32   `json:"height"`
	Duration float64 `json:"duration"`
}

func (f jsonFileWire) proto() *pb.File {
	return &pb.File{Id: f.ID, Name: f.Name, Size: f.Size, Mime: f.MIME, Kind: f.Kind, Sha256: f.SHA256,
		Width: f.Width, Height: f.Height, DurationMs: int64(f.Duration * 1000)}
}

func drain(resp *httpResponse) {
	io.Copy(io.Discard, io.LimitReader(resp.body, 1<<16))
	resp.body.Close()
}

// responseError turns an HTTP error answer into a herald error: the JSON
// {"error":{kind,message}} of /v1/files, or the "KIND: sentence" text of
// the upload endpoint, else the status.
func responseError(resp *httpResponse) error {
	body, _ := io.ReadAll(io.LimitReader(resp.body, 4096))
	var j struct {
		Error struct{ Kind, Message string } `json:"error"`
	}
	if json.Unmarshal(body, &j) == nil && j.Error.Kind != "" {
		return herald.Errorf(herald.Kind(j.Error.Kind), "%s", j.Error.Message)
	}
	text := strings.TrimSpace(string(body))
	if k, msg, ok := strings.Cut(text, ": "); ok && k == strings.ToUpper(k) && !strings.Contains(k, " ") {
		switch herald.Kind(k) {
		case herald.Invalid, herald.Unauthenticated, herald.PermissionDenied, herald.NotFound, herald.AlreadyExists,
			herald.TooLarge, herald.RateLimited, herald.Unavailable, herald.Internal:
			return herald.Errorf(herald.Kind(k), "%s", msg)
		}
	}
	kind := herald.Internal
	switch resp.status {
	case statusBadRequest:
		kind = herald.Invalid
	case statusUnauthorized:
		kind = herald.Unauthenticated
	case statusForbidden:
		kind = herald.PermissionDenied
	case statusNotFound, statusGone:
		kind = herald.NotFound
	case statusTooLarge:
		kind = herald.TooLarge
	case statusConflict:
		kind = herald.AlreadyExists
	case statusTooManyRequests:
		kind = herald.RateLimited
	case statusUnavailable, statusBadGateway:
		kind = herald.Unavailable
	}
	if text == "" {
		text = fmt.Sprintf("HTTP status %d", resp.status)
	}
	return herald.Errorf(kind, "%s", text)
}

// FileInfo returns a file's metadata.
func (c *Client) FileInfo(ctx context.Context, id string) (*pb.File, error) {
	var f pb.File
	return &f, c.Call(ctx, "files.get", &pb.FileRequest{Id: id}, &f)
}

// FileLink returns an absolute download link for a file that needs no
// token until it expires (ttl 0: one hour), e.g. for a <video src>.
func (c *Client) FileLink(ctx context.Context, id string, ttl time.Duration) (string, time.Time, error) {
	var l pb.FileLink
	if err := c.Call(ctx, "files.link", &pb.FileLinkRequest{Id: id, TtlMs: ttl.Milliseconds()}, &l); err != nil {
		return "", time.Time{}, err
	}
	return c.httpBase() + l.Url, time.UnixMilli(l.ExpiresAt), nil
}

// DownloadRange writes a file's bytes from offset from to its end into w
// (from > 0 resumes a partial download) and returns how many it wrote,
// and the file's size, type and SHA-256 (from the ETag) for the caller to
// check the whole.
func (c *Client) DownloadRange(ctx context.Context, id string, from int64, w io.Writer, progress Progress) (int64, *pb.File, error) {
	header := map[string]string{"Authorization": "Bearer " + c.Token()}
	if from > 0 {
		header["Range"] = fmt.Sprintf("bytes=%d-", from)
	}
	resp, err := doHTTP(ctx, &httpRequest{method: "GET", url: c.httpBase() + "/v1/files/" + id, header: header})
	if err != nil {
		return 0, nil, herald.Errorf(herald.Unavailable, "cannot reach the server: %v", err)
	}
	defer drain(resp)
	switch {
	case resp.status == statusOK && from > 0:
		return 0, nil, herald.Errorf(herald.Internal, "the server ignored the range; start the download over")
	case resp.status == statusRangeNotSatisfiable:
		return 0, nil, herald.Errorf(herald.Invalid, "the partial download is longer than the file; delete it and start over")
	case resp.status != statusOK && resp.status != statusPartialContent:
		return 0, nil, responseError(resp)
	}
	total := from + resp.length
	if progress == nil {
		progress = func(int64, int64) {}
	}
	pw := &progressWriter{w: w, done: from, total: total, fn: progress}
	n, err := io.Copy(pw, resp.body)
	if err != nil {
		return n, nil, herald.Errorf(herald.Unavailable, "the download was interrupted (%v); run it again to resume", err)
	}
	f := &pb.File{Id: id, Size: total, Mime: resp.header("Content-Type"), Sha256: strings.Trim(resp.header("ETag"), `"`)}
	return n, f, nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          Progress
	last        time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if time.Since(p.last) > 100*time.Millisecond || p.done == p.total {
		p.last = time.Now()
		p.fn(p.done, p.total)
	}
	return n, err
}

// FileResume is a ResumeStore in a JSON file (in the device's home).
type FileResume struct {
	Path string
	mu   sync.Mutex
}

func (r *FileResume) load() map[string]string {
	m := map[string]string{}
	if b, err := os.ReadFile(r.Path); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func (r *FileResume) save(m map[string]string) error {
	b, _ := json.Marshal(m)
	tmp := r.Path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.Path)
}

// Get implements ResumeStore.
func (r *FileResume) Get(key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.load()[key]
	return u, ok
}

// Put implements ResumeStore.
func (r *FileResume) Put(key, url string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.load()
	m[key] = url
	return r.save(m)
}

// Delete implements ResumeStore.
func (r *FileResume) Delete(key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.load()
	if _, ok := m[key]; !ok {
		return nil
	}
	delete(m, key)
	return r.save(m)
}
