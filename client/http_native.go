//go:build !js

package client

import (
	"context"
	"net/http"
)

// httpClient is shared by uploads and downloads; timeouts are per request
// through contexts, since a chunk of a large file can take a while.
var httpClient = &http.Client{}

func doHTTP(ctx context.Context, r *httpRequest) (*httpResponse, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, r.body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.ContentLength = r.length
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	return &httpResponse{status: resp.StatusCode, length: resp.ContentLength, header: resp.Header.Get, body: resp.Body}, nil
}
