// Package web is Herald's browser client, embedded so that heraldd alone
// serves it at /. The page is plain HTML, CSS and ES modules; the protocol
// runs in the browser as the Go client SDK compiled to WebAssembly
// (./wasm), so there is one implementation of the protocol for every
// client. See docs/WEB.md.
//
// static/herald.wasm.gz and static/wasm_exec.js are built output, committed
// so that `go build ./cmd/heraldd` needs no extra step; `go generate ./web`
// rebuilds them and a test fails when they are stale.
package web

//go:generate go run ./internal/genwasm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

//go:embed static
var static embed.FS

// asset is one file the handler serves, with its gzipped and Brotli
// forms when those are smaller.
type asset struct {
	ctype    string
	identity []byte // nil for the wasm until a client without gzip asks
	gz       []byte
	br       []byte
	etag     string

	once  sync.Once // decompresses identity from gz on first need
	unzip error
}

func (a *asset) plain() ([]byte, error) {
	a.once.Do(func() {
		if a.identity != nil {
			return
		}
		var zr *gzip.Reader
		zr, a.unzip = gzip.NewReader(bytes.NewReader(a.gz))
		if a.unzip == nil {
			a.identity, a.unzip = io.ReadAll(zr)
		}
	})
	return a.identity, a.unzip
}

// handler serves the embedded client.
type handler struct {
	assets map[string]*asset
	// wasmPath is the engine's content-addressed path, /herald.HASH.wasm:
	// it never changes meaning, so browsers may keep it for a year
	// without asking again, and a new engine is a new path.
	wasmPath string
}

// Handler returns the handler for the web client's files. Mount it at "/";
// paths it does not know answer 404. Every response carries the security
// headers (see SecurityHeaders).
func Handler() http.Handler { return shared() }

// shared builds the handler once per process: the files are embedded and
// never change, and compressing them is not free.
var shared = sync.OnceValue(newHandler)

func newHandler() *handler {
	h := &handler{assets: map[string]*asset{}}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		name := "/" + p
		switch {
		case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".br"):
			// Committed pre-compressed (the wasm): served as is to the
			// browsers that accept the encoding, which is all of them.
			name = name[:len(name)-3]
			a := h.assets[name]
			if a == nil {
				a = &asset{}
				h.assets[name] = a
			}
			if strings.HasSuffix(p, ".gz") {
				a.gz = b
				sum := sha256.Sum256(b)
				a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
			} else {
				a.br = b
			}
			a.ctype = contentType(name)
			return nil
		}
		a := &asset{identity: b, ctype: contentType(name)}
		if z := gzipped(b); len(z) < len(b)*9/10 {
			a.gz = z
			if z := brotlied(b); len(z) < len(a.gz) {
				a.br = z
			}
		}
		sum := sha256.Sum256(b)
		a.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		h.assets[name] = a
		return nil
	})
	if err != nil {
		panic(err)
	}
	if w := h.assets["/herald.wasm"]; w != nil {
		// The committed gzip is a function of the module, so its hash
		// names the module; the page finds the path in its preload link.
		h.wasmPath = "/herald." + strings.Trim(w.etag, `"`) + ".wasm"
		h.assets[h.wasmPath] = w
		if idx := h.assets["/index.html"]; idx != nil {
			page := bytes.Replace(idx.identity, []byte(`href="herald.wasm"`), []byte(`href="`+h.wasmPath[1:]+`"`), 1)
			h.assets["/index.html"] = &asset{identity: page, ctype: idx.ctype, gz: gzipped(page), br: brotlied(page)}
			sum := sha256.Sum256(page)
			h.assets["/index.html"].etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		}
	}
	h.assets["/"] = h.assets["/index.html"]
	delete(h.assets, "/index.html")
	return h
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".wasm":
		// instantiateStreaming insists on exactly this type.
		return "application/wasm"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".webmanifest":
		return "application/manifest+json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// brotlied compresses a small file at start. Quality 9 is within a few
// per cent of 11 on text this size, at a fraction of the time; the wasm
// comes pre-compressed at 11.
func brotlied(b []byte) []byte {
	var buf bytes.Buffer
	bw := brotli.NewWriterLevel(&buf, 9)
	bw.Write(b)
	bw.Close()
	return buf.Bytes()
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// hostRE is what a Host header may hold to be echoed into the policy; the
// HTTP server has already refused malformed ones, this keeps a stray quote
// or semicolon from ever reaching the header.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

// SecurityHeaders sets the headers every web response carries: a
// Content-Security-Policy that allows only this server's own scripts,
// styles and sockets (no inline script at all; 'wasm-unsafe-eval' is the
// narrow permission to compile WebAssembly, not to eval JavaScript; the one
// Trusted Types policy, herald-sw, admits only the service worker's URL), no
// framing, no MIME sniffing, and no Referer leaving the page.
func SecurityHeaders(w http.ResponseWriter, r *http.Request) {
	connect := "'self'"
	if hostRE.MatchString(r.Host) {
		// Older browsers do not count ws: and wss: as 'self'.
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "+
		"img-src 'self' data:; media-src 'self'; font-src 'self'; connect-src "+connect+"; "+
		"manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "+
		"require-trusted-types-for 'script'; trusted-types herald-sw")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	// The page's own calls use the camera, microphone and screen; no
	// frame or other origin may.
	h.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w, r)
	a := h.assets[r.URL.Path]
	if a == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	if r.URL.Path == h.wasmPath {
		// Content-addressed: the same path is always the same bytes.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// Revalidate every time: a 304 costs one round trip and no body,
		// and the page never runs a wasm from an older server against a
		// newer one.
		hd.Set("Cache-Control", "no-cache")
	}
	body, etag := a.identity, a.etag
	if a.gz != nil {
		hd.Set("Vary", "Accept-Encoding")
		if a.br != nil && accepts(r, "br") {
			hd.Set("Content-Encoding", "br")
			body, etag = a.br, strings.TrimSuffix(a.etag, `"`)+`-br"`
		} else if accepts(r, "gzip") {
			hd.Set("Content-Encoding", "gzip")
			body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gz"`
		} else {
			var err error
			if body, err = a.plain(); err != nil {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
		}
	}
	hd.Set("ETag", etag)
	// Served whole (no ranges): every file is small or fetched at once,
	// and a length lets the browser show the wasm's progress.
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// etagMatch reads If-None-Match: a list of tags, or *.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// accepts reads Accept-Encoding for one coding, honouring an explicit
// q=0.
func accepts(r *http.Request, coding string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		params = strings.ReplaceAll(params, " ", "")
		return params != "q=0" && params != "q=0.0" && params != "q=0.00" && params != "q=0.000"
	}
	return false
}
