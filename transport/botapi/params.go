package botapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
)

// Bounds on a request: Telegram's own bounds are about the same (a text
// is 4,096 characters; uploads, when they come, get their own limit).
const (
	maxBodyBytes    = 1 << 20  // JSON and url-encoded bodies
	maxUploadBytes  = 50 << 20 // multipart bodies: a bot uploads files of up to 50 MB, as on Telegram
	maxMultipartMem = 1 << 20  // held in memory before spilling to disk
)

// params are a request's parameters, whichever of the four encodings
// carried them: every value as text, objects and arrays as their JSON.
type params struct {
	v     map[string]string
	files map[string][]*multipart.FileHeader
}

// parseParams reads the query string and the body (multipart bodies up to
// maxMultipart bytes). Libraries differ in
// which encoding they use (go-telegram/bot always multipart, grammY JSON,
// others url-encoded or the query string), so all are accepted for every
// method.
func parseParams(r *http.Request, maxMultipart int64) (params, error) {
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
		if len(strings.TrimSpace(string(body))) == 0 {
			return p, nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return p, badRequest("the JSON body is not an object: %v", err)
		}
		for k, raw := range obj {
			var s string
			if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
				p.v[k] = s
			} else if string(raw) != "null" {
				p.v[k] = string(raw)
			}
		}
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
		r.Body = http.MaxBytesReader(nil, r.Body, maxMultipart)
		if err := r.ParseMultipartForm(maxMultipartMem); err != nil {
			if errors.Is(err, io.EOF) {
				return p, nil // an empty multipart body (go-telegram/bot's getMe): no parameters
			}
			return p, tooLarge(err)
		}
		for k, vs := range r.MultipartForm.Value {
			if len(vs) > 0 {
				p.v[k] = vs[0]
			}
		}
		p.files = r.MultipartForm.File
	}
	return p, nil
}

func tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{code: http.StatusRequestEntityTooLarge, desc: "Request Entity Too Large"}
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
func (p params) json(name string, v any) (bool, error) {
	s := p.v[name]
	if s == "" {
		return false, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return false, badRequest("parameter %q is not valid JSON of the expected shape", name)
	}
	return true, nil
}
