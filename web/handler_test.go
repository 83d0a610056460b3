package web

import (
	"net/http/httptest"
	"testing"
)

func TestAcceptsGzip(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate, br, zstd", true},
		{"br;q=1.0, GZIP;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"deflate, br", false},
		{"x-gzip", false},
	} {
		r := httptest.NewRequest("GET", "/herald.wasm", nil)
		r.Header.Set("Accept-Encoding", c.header)
		if got := accepts(r, "gzip"); got != c.want {
			t.Errorf("Accept-Encoding %q: %v, want %v", c.header, got, c.want)
		}
	}
}

func TestETagMatch(t *testing.T) {
	for _, c := range []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`*`, true},
		{`"abcd"`, false},
		{`abc`, false},
	} {
		if got := etagMatch(c.header, `"abc"`); got != c.want {
			t.Errorf("If-None-Match %q: %v, want %v", c.header, got, c.want)
		}
	}
}

// TestHead: HEAD gets the headers and length of GET, and no body.
func TestHead(t *testing.T) {
	h := Handler()
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest("GET", "/app.js", nil))
	head := httptest.NewRecorder()
	h.ServeHTTP(head, httptest.NewRequest("HEAD", "/app.js", nil))
	if head.Code != 200 || head.Body.Len() != 0 {
		t.Fatalf("HEAD: %d with %d bytes", head.Code, head.Body.Len())
	}
	if a, b := head.Header().Get("Content-Length"), get.Header().Get("Content-Length"); a != b || a == "" {
		t.Fatalf("Content-Length: HEAD %q, GET %q", a, b)
	}
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest("POST", "/", nil))
	if post.Code != 404 || post.Header().Get("Content-Security-Policy") == "" {
		t.Fatalf("POST /: %d, policy %q", post.Code, post.Header().Get("Content-Security-Policy"))
	}
}
