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

// CheckServers validates a comma-separated list of --server URLs, the
// nodes of one deployment, and returns it cleaned by CheckServer.
// Scenarios that take a list spread their clients over its servers
// round robin (see Pick) and add up the servers' metrics.
func CheckServers(raw string) (string, error) {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := CheckServer(strings.TrimSpace(p))
		if err != nil {
			return "", err
		}
		parts[i] = u
	}
	return strings.Join(parts, ","), nil
}

// Pick returns the i-th server of a list from CheckServers, round robin:
// with two nodes, clients 0, 2, 4 … are on the first and 1, 3, 5 … on the
// second, so each direct pair has one member on each.
func Pick(servers string, i int) string {
	list := strings.Split(servers, ",")
	return list[i%len(list)]
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
