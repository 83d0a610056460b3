package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/service"
	"github.com/heraldim/herald/transport/tusstore"
	tus "github.com/tus/tusd/v2/pkg/handler"
)

// serve runs one request through the transport's handler in memory.
func (fs *filesServer) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	fs.tr.Handler().ServeHTTP(w, req)
	return w
}

// FuzzUploadHeaders feeds arbitrary Upload-Metadata, Upload-Length and
// Upload-Offset to the upload endpoint: the server never fails (5xx) or
// panics, keeps only the metadata it reads (never the client's word on
// the owner), and accepts bytes only at the offset the upload is at.
func FuzzUploadHeaders(f *testing.F) {
	fs := startFiles(f)
	sha := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("ab", 32)))
	f.Add("filename "+base64.StdEncoding.EncodeToString([]byte("a.txt"))+",sha256 "+sha, "3", "0")
	f.Add("sha256 "+sha+",width MTAw,height NTA=,duration_ms LTE=", "10", "+0")
	f.Add("sha256 "+sha+",herald-owner MQ==", "3", "00")
	f.Add("sha256,filename", "-1", "-0")
	f.Add("sha256 !!!!", "99999999999999999999", "1")
	f.Add(" , ,,", "", "")
	f.Fuzz(func(t *testing.T, metadata, length, offset string) {
		// Herald's reading of the parsed metadata.
		if meta, err := clientMeta(tus.ParseMetadataHeader(metadata)); err == nil {
			for k, v := range meta {
				switch k {
				case "filename", "sha256", "width", "height", "duration_ms":
				default:
					t.Fatalf("kept metadata key %q", k)
				}
				if len(v) > 1024 {
					t.Fatalf("kept %d bytes of %s", len(v), k)
				}
			}
			up := uploadOf("x", 1, meta)
			if up.Width < 0 || up.Height < 0 || up.Duration < 0 {
				t.Fatalf("negative media metadata %+v", up)
			}
		}

		// The endpoint, with the headers as sent.
		req := httptest.NewRequest(http.MethodPost, "/v1/uploads/", nil)
		req.Header.Set("Authorization", "Bearer "+fs.token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Length", length)
		req.Header.Set("Upload-Metadata", metadata)
		w := fs.serve(req)
		if w.Code >= 500 {
			t.Fatalf("create: %d %s", w.Code, w.Body)
		}
		if w.Code != http.StatusCreated {
			return
		}
		loc := w.Header().Get("Location")
		id := loc[strings.LastIndex(loc, "/")+1:]
		defer fs.tr.files.uploads.Delete(context.Background(), id)
		if p, err := fs.tr.files.uploads.Progress(context.Background(), id); err != nil || p.Owner <= 0 {
			t.Fatalf("created upload: %+v, %v", p, err)
		}
		size, _ := strconv.ParseInt(length, 10, 64)
		body := []byte("abc")
		if size > 0 && size <= 64 {
			body = bytes.Repeat([]byte("a"), int(size))
		}
		req = httptest.NewRequest(http.MethodPatch, "/v1/uploads/"+id, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fs.token)
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		req.Header.Set("Upload-Offset", offset)
		w = fs.serve(req)
		if w.Code >= 500 {
			t.Fatalf("patch at %q: %d %s", offset, w.Code, w.Body)
		}
		if off, err := strconv.ParseInt(offset, 10, 64); w.Code < 300 && (err != nil || off != 0) {
			t.Fatalf("bytes accepted at offset %q of a new upload: %d", offset, w.Code)
		}
	})
}

// FuzzFileLink feeds arbitrary file ids and queries to the download
// endpoint, which a signed link (?u=&exp=&sig=) opens without a token:
// only the genuine link's values open the file.
func FuzzFileLink(f *testing.F) {
	fs := startFiles(f)
	ctx := context.Background()
	svc := fs.tr.svc
	alice, err := svc.Authenticate(ctx, fs.token)
	if err != nil {
		f.Fatal(err)
	}
	content := []byte("the file behind the link")
	id := tusstore.NewID()
	file, err := svc.FinishUpload(ctx, alice, service.Upload{
		ID: id, SHA256: sha256hex(content), Size: int64(len(content)),
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil },
	})
	if err != nil {
		f.Fatal(err)
	}
	q, _, err := svc.SignFileLink(ctx, alice, file.ID, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	genuine, _ := url.ParseQuery(q)
	wantSig, _ := base64.RawURLEncoding.DecodeString(genuine.Get("sig"))
	f.Add(file.ID, q)
	f.Add(file.ID, q+"&thumb=1")
	f.Add(file.ID, strings.Replace(q, "u=", "u=+", 1))
	f.Add(file.ID, "u=1&exp=99999999999&sig=AAAA")
	f.Add(file.ID, "u=1&u=2&exp=&sig=%zz")
	f.Add(strings.ToUpper(file.ID), q)
	f.Add("../"+file.ID, q)
	f.Fuzz(func(t *testing.T, id, query string) {
		req, err := http.NewRequest(http.MethodGet, "http://herald/v1/files/"+url.PathEscape(id)+"?"+query, nil)
		if err != nil {
			return // not a request a client can send
		}
		w := fs.serve(req)
		switch w.Code {
		case http.StatusOK:
			v := req.URL.Query()
			u, _ := strconv.ParseInt(v.Get("u"), 10, 64)
			exp, _ := strconv.ParseInt(v.Get("exp"), 10, 64)
			sig, _ := base64.RawURLEncoding.DecodeString(v.Get("sig"))
			if id != file.ID || u != alice.UserID || strconv.FormatInt(exp, 10) != genuine.Get("exp") || !bytes.Equal(sig, wantSig) {
				t.Fatalf("GET %s?%s opened the file", id, query)
			}
			if !bytes.Equal(w.Body.Bytes(), content) {
				t.Fatalf("the link served %q", w.Body)
			}
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect:
			// The router's redirect to the cleaned path ("." or ".."
			// segments): it opens nothing, and must stay on this server.
			if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Fatalf("GET %s?%s redirects off the server, to %q", id, query, loc)
			}
		default:
			t.Fatalf("GET %s?%s: %d %s", id, query, w.Code, w.Body)
		}
	})
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
