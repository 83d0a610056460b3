package botapi

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// Every Bot API request's parameters are decoded from network bytes in one
// of four encodings; each has a fuzz target. Beyond not panicking, each
// checks what a bot relies on: a decoded request answers every accessor
// with a value or a Bad Request, and a multipart file reads back whole and
// leaves nothing on disk once the request is closed.

// exercise calls every accessor a method may use on every parameter.
func exercise(t *testing.T, p params) {
	for k := range p.v {
		p.has(k)
		p.required(k)
		p.int64(k, 0)
		p.requiredInt(k)
		p.bool(k)
		var ents []MessageEntity
		if ok, err := p.json(k, &ents); ok && err != nil {
			t.Fatalf("json(%q) both decoded and failed", k)
		}
		var kb InlineKeyboardMarkup
		p.json(k, &kb)
	}
	for name, f := range p.files {
		r, err := f.open()
		if err != nil {
			t.Fatalf("file %q does not open: %v", name, err)
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil || n != f.size || !bytes.Equal(h.Sum(nil), f.sha256) {
			t.Fatalf("file %q read back %d of %d bytes (%v), hash match %v", name, n, f.size, err, bytes.Equal(h.Sum(nil), f.sha256))
		}
	}
}

func decode(t *testing.T, r *http.Request, dir string) {
	t.Helper()
	p, err := parseParams(r, 1<<20, dir)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.code < 400 || ae.code > 499 {
			t.Fatalf("error %v is not a Bot API client error", err)
		}
		if p.files != nil {
			t.Fatal("a failed decode kept files")
		}
	}
	exercise(t, p)
	p.close()
	if dir != "" {
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Fatalf("%d spooled files left after close", len(left))
		}
	}
}

func FuzzParamsQuery(f *testing.F) {
	for _, s := range []string{"chat_id=1&text=hi", "entities=null&parse_mode=HTML", "a=%zz", "reply_markup=%7B%22inline_keyboard%22%3A%5B%5D%7D", "x=1&x=2;y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest(http.MethodGet, "/bot1:x/sendMessage", nil)
		r.URL.RawQuery = q
		decode(t, r, "")
	})
}

func FuzzParamsForm(f *testing.F) {
	for _, s := range []string{"chat_id=1&text=hi", "entities=null&parse_mode=HTML&text=%3Cb%3Ex%3C%2Fb%3E", "a=%zz", "message_ids=%5B1%2C2%5D", "=&&="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/bot1:x/sendMessage", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		decode(t, r, "")
	})
}

func FuzzParamsJSON(f *testing.F) {
	for _, s := range []string{`{"chat_id":1,"text":"hi"}`, `{"entities":null,"parse_mode":"HTML"}`, `{"reply_markup":{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}}`, `[]`, `{"a":"\ud800"}`, ``, `{"chat_id":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/bot1:x/sendMessage", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		decode(t, r, "")
	})
}

func FuzzParamsMultipart(f *testing.F) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.SetBoundary("XyZ")
	mw.WriteField("chat_id", "1")
	mw.WriteField("caption_entities", "null")
	fw, _ := mw.CreateFormFile("photo", "")
	fw.Write([]byte("\x89PNG\r\n\x1a\n"))
	fw, _ = mw.CreateFormFile("document", "a.txt")
	fw.Write([]byte("hello"))
	mw.Close()
	f.Add("XyZ", b.Bytes())
	f.Add("XyZ", []byte{})
	f.Add("XyZ", []byte("--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"\"\r\n\r\nabc\r\n--XyZ--\r\n"))
	f.Add("XyZ", []byte("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated"))
	f.Add("b", []byte("--b\r\nContent-Disposition: form-data; name*=UTF-8''x; filename*=UTF-8''%E2%82%AC\r\n\r\n\r\n--b--"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/bot1:x/sendDocument", bytes.NewReader(body))
		r.Header.Set("Content-Type", `multipart/form-data; boundary="`+strings.ReplaceAll(boundary, `"`, "")+`"`)
		decode(t, r, dir)
	})
}

// TestParamsNullIsAbsent: JSON null is absent whichever encoding carried
// it (issue 23 item 1).
func TestParamsNullIsAbsent(t *testing.T) {
	for _, v := range []string{"null", " null ", ""} {
		p := params{v: map[string]string{"entities": v}}
		var ents []MessageEntity
		if ok, err := p.json("entities", &ents); ok || err != nil {
			t.Errorf("entities=%q: given %v, err %v", v, ok, err)
		}
	}
}

// TestTakesFile: every method that reads an uploaded file is given an
// upload's room, and no other is.
func TestTakesFile(t *testing.T) {
	for name := range methods {
		if strings.HasPrefix(name, "send") && name != "sendmessage" && name != "sendchataction" && !takesFile[name] {
			t.Errorf("%s looks like a media method but takes no file", name)
		}
	}
	for name := range takesFile {
		if methods[name] == nil {
			t.Errorf("takesFile names %s, which is no method", name)
		}
	}
}
