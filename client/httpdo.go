package client

import "io"

// httpRequest is one of the file transfers' plain HTTP requests (tus
// uploads, downloads). The SDK needs this little of HTTP, and keeping
// net/http's types out of the shared code lets the browser build send it
// with fetch (http_js.go) without linking net/http, crypto/tls and
// crypto/x509 into the web engine; native builds use net/http
// (http_native.go).
type httpRequest struct {
	method, url string
	header      map[string]string
	body        io.Reader // nil for none
	length      int64     // the body's length
}

// httpResponse is the answer to an httpRequest. The caller closes body.
type httpResponse struct {
	status int
	length int64 // Content-Length, -1 when unknown
	header func(name string) string
	body   io.ReadCloser
}

// HTTP statuses the file transfers tell apart.
const (
	statusOK                  = 200
	statusCreated             = 201
	statusNoContent           = 204
	statusPartialContent      = 206
	statusBadRequest          = 400
	statusUnauthorized        = 401
	statusForbidden           = 403
	statusNotFound            = 404
	statusConflict            = 409
	statusGone                = 410
	statusTooLarge            = 413
	statusRangeNotSatisfiable = 416
	statusTooManyRequests     = 429
	statusBadGateway          = 502
	statusUnavailable         = 503
)
