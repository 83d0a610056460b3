package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/blob"
	"github.com/heraldim/herald/crypto"
	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/transport/tusstore"
	tus "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	expslog "golang.org/x/exp/slog"
)

// Files configures the HTTP file endpoints: resumable uploads with tus at
// /v1/uploads/ and downloads with Range at /v1/files/{id}.
type Files struct {
	Blobs  blob.Store
	Sealer *crypto.Sealer
	// Abandoned is how long an unfinished upload is kept after its last
	// byte arrived (default 24 hours).
	Abandoned time.Duration
}

type filesHTTP struct {
	svc       *service.Service
	log       *slog.Logger
	uploads   *tusstore.Store
	tus       http.Handler
	abandoned time.Duration
}

type callerKey struct{}

// EnableFiles mounts the file endpoints on the Handler.
func (s *Server) EnableFiles(cfg Files) error {
	if cfg.Abandoned <= 0 {
		cfg.Abandoned = 24 * time.Hour
	}
	f := &filesHTTP{svc: s.svc, log: s.log, abandoned: cfg.Abandoned}
	f.uploads = tusstore.New(cfg.Blobs, cfg.Sealer, f.release)
	composer := tus.NewStoreComposer()
	f.uploads.UseIn(composer)
	memorylocker.New().UseIn(composer)
	th, err := tus.NewHandler(tus.Config{
		BasePath:                  "/v1/uploads/",
		StoreComposer:             composer,
		MaxSize:                   s.svc.MaxFileSize(),
		DisableDownload:           true, // files are read at /v1/files/, never from the upload
		PreUploadCreateCallback:   f.beforeCreate,
		PreFinishResponseCallback: f.beforeFinish,
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)), // its request logs carry file names
	})
	if err != nil {
		return err
	}
	f.tus = http.StripPrefix("/v1/uploads/", th)
	s.files = f
	return nil
}

// SweepUploads deletes uploads abandoned for longer than configured.
func (s *Server) SweepUploads(ctx context.Context) (int, error) {
	if s.files == nil {
		return 0, nil
	}
	before := time.Now().Add(-s.files.abandoned)
	n, err := s.files.uploads.Sweep(ctx, before)
	if err != nil {
		return n, err
	}
	// Reservations whose upload was never created (its creation failed
	// after the reservation) or whose release failed.
	ids, err := s.svc.ReservationsBefore(ctx, before)
	if err != nil {
		return n, err
	}
	for _, id := range ids {
		if _, err := s.files.uploads.GetUpload(ctx, id); errors.Is(err, tus.ErrNotFound) {
			if err := s.svc.ReleaseUpload(ctx, id); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (f *filesHTTP) mount(mux *http.ServeMux) {
	mux.Handle("/v1/uploads/", http.HandlerFunc(f.serveUpload))
	mux.HandleFunc("GET /v1/files/{id}", f.serveFile)
	mux.HandleFunc("HEAD /v1/files/{id}", f.serveFile)
}

// serveUpload authenticates every tus request and lets a device touch
// only its user's uploads (others are told they do not exist).
func (f *filesHTTP) serveUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		f.tus.ServeHTTP(w, r)
		return
	}
	caller, err := f.svc.Authenticate(r.Context(), bearer(r))
	if err != nil {
		tusError(w, err)
		return
	}
	if id := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/uploads/"), "/"); id != "" {
		p, err := f.uploads.Progress(r.Context(), id)
		if err != nil || p.Owner != caller.UserID {
			tusError(w, herald.Errorf(herald.NotFound, "no such upload"))
			return
		}
		method := r.Method
		if m := r.Header.Get("X-HTTP-Method-Override"); method == http.MethodPost && m != "" {
			method = m // as tusd reads it
		}
		if method == http.MethodPatch {
			if err := f.uploads.CheckPatch(p, r.ContentLength); err != nil {
				tusError(w, err)
				return
			}
		}
	}
	f.tus.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
}

func hookCaller(ev tus.HookEvent) (service.Caller, bool) {
	c, ok := ev.Context.Value(callerKey{}).(service.Caller)
	return c, ok
}

// beforeCreate checks the size limit and quota before a byte is stored,
// and records who the upload belongs to (never trusting the client's
// metadata for that).
func (f *filesHTTP) beforeCreate(ev tus.HookEvent) (tus.HTTPResponse, tus.FileInfoChanges, error) {
	c, ok := hookCaller(ev)
	if !ok {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusErr(herald.Errorf(herald.Unauthenticated, "a valid token is required"))
	}
	meta, err := clientMeta(ev.Upload.MetaData)
	if err != nil {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusErr(err)
	}
	meta[tusstore.OwnerKey] = strconv.FormatInt(c.UserID, 10)
	// The id is chosen here so that the upload's bytes are reserved
	// against the quota under it before the upload exists.
	id := tusstore.NewID()
	if err := f.svc.ReserveUpload(ev.Context, c, id, ev.Upload.Size); err != nil {
		return tus.HTTPResponse{}, tus.FileInfoChanges{}, tusErr(err)
	}
	return tus.HTTPResponse{}, tus.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// clientMeta keeps the Upload-Metadata keys the server reads, each at
// most 1 KB, and requires the content's SHA-256. Everything else the
// client sent, its word on the owner included, is dropped.
func clientMeta(md tus.MetaData) (tus.MetaData, error) {
	meta := tus.MetaData{}
	for _, k := range []string{"filename", "sha256", "width", "height", "duration_ms"} {
		if v, ok := md[k]; ok && len(v) <= 1024 {
			meta[k] = v
		}
	}
	if len(meta["sha256"]) != 64 {
		return nil, herald.Errorf(herald.Invalid, "Upload-Metadata needs sha256: the file's SHA-256 as 64 hex digits")
	}
	return meta, nil
}

// uploadOf reads an upload's kept metadata. A number that does not parse
// or is out of range is 0, as if absent.
func uploadOf(id string, size int64, meta tus.MetaData) service.Upload {
	num := func(k string) int64 {
		n, err := strconv.ParseInt(meta[k], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0
		}
		return n
	}
	return service.Upload{
		ID: id, Name: meta["filename"], SHA256: strings.ToLower(meta["sha256"]), Size: size,
		Width: int(num("width")), Height: int(num("height")), Duration: time.Duration(num("duration_ms")) * time.Millisecond,
	}
}

// release stops counting a deleted upload against its owner's quota. A
// failure leaves the reservation to the sweep.
func (f *filesHTTP) release(ctx context.Context, id string) {
	if err := f.svc.ReleaseUpload(context.WithoutCancel(ctx), id); err != nil {
		f.log.WarnContext(ctx, "upload reservation not released; the sweep will", "upload", id, "err", err)
	}
}

// beforeFinish makes a complete upload a file: checksum, type, encryption
// under the file's own key, thumbnail. The response names the file in
// Herald-File-Id (and as JSON in the body); the upload's parts go.
func (f *filesHTTP) beforeFinish(ev tus.HookEvent) (tus.HTTPResponse, error) {
	c, ok := hookCaller(ev)
	if !ok {
		return tus.HTTPResponse{}, tusErr(herald.Errorf(herald.Unauthenticated, "a valid token is required"))
	}
	id := ev.Upload.ID
	up := uploadOf(id, ev.Upload.Size, ev.Upload.MetaData)
	up.Open = func(ctx context.Context) (io.ReadCloser, error) {
		u, err := f.uploads.GetUpload(ctx, id)
		if err != nil {
			return nil, err
		}
		return u.GetReader(ctx)
	}
	// Finishing a large file takes seconds per GiB. It must not stop
	// when the client gives up waiting for the answer: the client asks
	// again, and finds the file by the upload's id.
	ctx := context.WithoutCancel(ev.Context)
	file, err := f.svc.FinishUpload(ctx, c, up)
	if herald.IsKind(err, herald.Invalid) {
		// A damaged upload cannot be resumed into a good one.
		f.uploads.Delete(ctx, id)
	}
	if err != nil {
		f.log.WarnContext(ctx, "upload not made a file", "upload", id, "err", err)
		return tus.HTTPResponse{}, tusErr(err)
	}
	if err := f.uploads.Delete(ctx, id); err != nil {
		f.log.WarnContext(ctx, "upload parts not deleted; the sweep will", "upload", id, "err", err)
	}
	body, _ := json.Marshal(jsonFile(file))
	return tus.HTTPResponse{
		StatusCode: http.StatusOK, // tus answers 204, which cannot carry the body
		Header:     tus.HTTPHeader{"Herald-File-Id": file.ID, "Content-Type": "application/json"},
		Body:       string(body),
	}, nil
}

// jsonFile is a file as the HTTP endpoints and `herald --json` show it.
func jsonFile(f herald.File) map[string]any {
	m := map[string]any{"id": f.ID, "name": f.Name, "size": f.Size, "mime": f.MIME, "kind": f.Kind, "sha256": f.SHA256}
	if f.Width > 0 {
		m["width"], m["height"] = f.Width, f.Height
	}
	if f.Duration > 0 {
		m["duration"] = f.Duration.Seconds()
	}
	return m
}

// serveFile serves a file's plaintext with single Range requests,
// decrypting only the 64 KiB chunks a range covers. It authenticates by
// bearer token or by a signed link (?u=&exp=&sig=), and checks at every
// request that the user may still read the file.
func (f *filesHTTP) serveFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	var caller service.Caller
	var err error
	if q.Get("sig") != "" {
		caller, err = f.svc.LinkCaller(id, q.Get("u"), q.Get("exp"), q.Get("sig"))
	} else {
		caller, err = f.svc.Authenticate(r.Context(), bearer(r))
	}
	if err != nil {
		httpError(w, err)
		return
	}
	thumb := q.Get("thumb") == "1"
	fr, err := f.svc.OpenFile(r.Context(), caller, id, thumb)
	if err != nil {
		httpError(w, err)
		return
	}
	defer fr.Close()
	if strings.Contains(r.Header.Get("Range"), ",") {
		// One range per request: multipart answers are rarely wanted and
		// would let one request make the server decrypt a file many times.
		r.Header.Del("Range")
	}
	h := w.Header()
	etag := `"` + fr.SHA256 + `"`
	if thumb {
		etag = `"` + fr.SHA256 + `-thumb"`
	}
	h.Set("ETag", etag)
	h.Set("Content-Type", fr.MIME)
	h.Set("X-Content-Type-Options", "nosniff")
	// A file is never a page of this origin, whatever it contains.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=300")
	disposition := "attachment"
	if fr.Kind == herald.FilePhoto || fr.Kind == herald.FileVideo || fr.Kind == herald.FileAudio || fr.Kind == herald.FileVoice || fr.MIME == "application/pdf" {
		disposition = "inline"
	}
	if cd := mime.FormatMediaType(disposition, map[string]string{"filename": fr.Name}); cd != "" {
		h.Set("Content-Disposition", cd)
	} else {
		h.Set("Content-Disposition", disposition)
	}
	http.ServeContent(w, r, "", fr.Created, io.NewSectionReader(fr.ReaderAt, 0, fr.Size))
}

// httpStatus maps error kinds to HTTP statuses.
func httpStatus(k herald.Kind) int {
	switch k {
	case herald.Invalid:
		return http.StatusBadRequest
	case herald.Unauthenticated:
		return http.StatusUnauthorized
	case herald.PermissionDenied:
		return http.StatusForbidden
	case herald.NotFound:
		return http.StatusNotFound
	case herald.AlreadyExists:
		return http.StatusConflict
	case herald.TooLarge:
		return http.StatusRequestEntityTooLarge
	case herald.RateLimited:
		return http.StatusTooManyRequests
	case herald.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// httpError answers with the error's kind and sentence as JSON, the same
// pair the WebSocket protocol carries.
func httpError(w http.ResponseWriter, err error) {
	k := herald.ErrorKind(err)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if k == herald.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
	}
	w.WriteHeader(httpStatus(k))
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"kind": string(k), "message": herald.ErrorMessage(err)}})
}

// tusErr turns an error into one the tus handler answers with: the body
// is "KIND: sentence", which the SDK parses back into a herald error.
func tusErr(err error) error {
	var te tus.Error
	if errors.As(err, &te) {
		return err
	}
	k := herald.ErrorKind(err)
	return tus.NewError(string(k), herald.ErrorMessage(err), httpStatus(k))
}

func tusError(w http.ResponseWriter, err error) {
	k := herald.ErrorKind(err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(httpStatus(k))
	io.WriteString(w, string(k)+": "+herald.ErrorMessage(err)+"\n")
}
