package bench

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckServer validates a --server URL and returns it without a trailing
// slash. The load generator only ever targets this machine: the host must
// be "localhost" or a loopback address (127.0.0.0/8, ::1).
func CheckServer(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--server %q is not a URL like http://127.0.0.1:8080", raw)
	}
	switch u.Scheme {
	case "http", "ws":
	default:
		return "", fmt.Errorf("--server %q: use http:// (the load generator only targets a server on this machine, without TLS)", raw)
	}
	host := u.Hostname()
	if !isLoopback(host) {
		return "", fmt.Errorf("--server %q: the load generator only targets loopback addresses (127.0.0.0/8, ::1, localhost), not %q", raw, host)
	}
	u.Scheme = "http"
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
