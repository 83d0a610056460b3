package botapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Bounds on a request: Telegram's own bounds are about the same (a text
// is 4,096 characters; uploads, when they come, get their own limit).
const (
	maxBodyBytes   = 1 << 20  // JSON and url-encoded bodies, and a multipart body's fields together
	maxUploadBytes = 50 << 20 // multipart bodies: a bot uploads files of up to 50 MB, as on Telegram
	maxParts       = 100      // parts of one multipart body
)

// params are a request's parameters, whichever of the four encodings
// carried them: every value as text, objects and arrays as their JSON.
type params struct {
	v     map[string]string
	files map[string]*spooled
}

// close removes the request's spooled files.
func (p params) close() {
	for _, f := range p.files {
		f.close()
	}
}

// parseParams reads the query string and the body (multipart bodies up to
// maxMultipart bytes). Libraries differ in
// which encoding they use (go-telegram/bot always multipart, grammY JSON,
// others url-encoded or the query string), so all are accepted for every
// method. A multipart body's files are spooled encrypted to spoolDir
// (spool); the caller closes the params to remove them.
func parseParams(r *http.Request, maxMultipart int64, spoolDir string) (params, error) {
	p := params{v: map[string]string{}}
	for k, vs := range r.URL.Query() {
		if len(vs) > 0 {
			p.v[k] = vs[0]
		}
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return p, nil
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
		if err != nil {
			return p, tooLarge(err)
		}
		return p, p.addJSON(body)
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(nil, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			return p, tooLarge(err)
		}
		for k, vs := range r.PostForm {
			if len(vs) > 0 {
				p.v[k] = vs[0]
			}
		}
	case "multipart/form-data":
		if ctParams["boundary"] == "" {
			return p, badRequest("the multipart body has no boundary")
		}
		body := http.MaxBytesReader(nil, r.Body, maxMultipart)
		err := p.addMultipart(multipart.NewReader(body, ctParams["boundary"]), spoolDir)
		if err != nil {
			p.close()
			return params{}, err
		}
		// Read past the closing boundary to the body's end, so the
		// server sees it whole (and keeps the connection).
		io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	}
	return p, nil
}

// addJSON adds the members of a JSON object; null is absent.
func (p *params) addJSON(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return badRequest("the JSON body is not an object: %v", err)
	}
	for k, raw := range obj {
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			p.v[k] = s
		} else if string(raw) != "null" {
			p.v[k] = string(raw)
		}
	}
	return nil
}

// addMultipart reads a multipart body part by part: fields into memory,
// maxBodyBytes of them in all; files straight into encrypted spools, so
// no plaintext reaches the disk (the standard library's
// ParseMultipartForm writes large parts to the temp directory as they
// came).
func (p *params) addMultipart(mr *multipart.Reader, spoolDir string) error {
	fieldBytes := int64(maxBodyBytes)
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF || (err != nil && i == 0 && errors.Is(err, io.EOF)) {
			return nil // the end; or an empty body (go-telegram/bot's getMe): no parameters
		}
		if err != nil {
			return tooLarge(err)
		}
		if i >= maxParts {
			return badRequest("the multipart body has more than %d parts", maxParts)
		}
		name := part.FormName()
		_, disp, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		// A filename parameter makes a file, even an empty one: some
		// libraries name no photo.
		_, isFile := disp["filename"]
		switch {
		case name == "":
			_, err = io.Copy(io.Discard, part)
		case isFile:
			if p.files == nil {
				p.files = map[string]*spooled{}
			}
			if p.files[name] != nil {
				_, err = io.Copy(io.Discard, part) // the first of a name counts, as for fields
				break
			}
			var f *spooled
			f, err = spool(spoolDir, disp["filename"], part)
			if f != nil {
				p.files[name] = f
			}
		default:
			var b []byte
			b, err = io.ReadAll(io.LimitReader(part, fieldBytes+1))
			fieldBytes -= int64(len(b))
			if err == nil && fieldBytes < 0 {
				return &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
			}
			if _, dup := p.v[name]; !dup {
				p.v[name] = string(b)
			}
		}
		part.Close()
		if err != nil {
			return tooLarge(err)
		}
	}
}

func tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &apiError{code: http.StatusRequestTimeout, desc: "Request Timeout: the request body came too slowly"}
	}
	return badRequest("the request body does not parse: %v", err)
}

func (p params) has(name string) bool { _, ok := p.v[name]; return ok && p.v[name] != "" }

func (p params) str(name string) string { return p.v[name] }

// required returns a parameter that must be present and not empty.
func (p params) required(name string) (string, error) {
	v := p.v[name]
	if v == "" {
		return "", badRequest("parameter %q is required", name)
	}
	return v, nil
}

func (p params) int64(name string, def int64) (int64, error) {
	v := p.v[name]
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, badRequest("parameter %q must be an integer", name)
	}
	return n, nil
}

func (p params) requiredInt(name string) (int64, error) {
	if !p.has(name) {
		return 0, badRequest("parameter %q is required", name)
	}
	return p.int64(name, 0)
}

func (p params) bool(name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(p.v[name])) {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, badRequest("parameter %q must be true or false", name)
}

// json decodes a parameter holding a JSON object or array (in form
// encodings it arrives as JSON text; in a JSON body as itself).
// JSON null is absent in every encoding: a widely used library sends
// entities=null on every call, and a present value would void parse_mode.
func (p params) json(name string, v any) (bool, error) {
	s := strings.TrimSpace(p.v[name])
	if s == "" || s == "null" {
		return false, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return false, badRequest("parameter %q is not valid JSON of the expected shape", name)
	}
	return true, nil
}
