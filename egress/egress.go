// Package egress holds the one HTTP client through which the server makes
// requests to addresses that users choose (bot webhooks today; push
// endpoints when they come). Its dialer refuses loopback, private,
// link-local, metadata and other non-public addresses, and ports other
// than Telegram's webhook ports, on the address actually dialled, after
// DNS resolution, so a name that resolves (or re-resolves) to an internal
// address cannot pass. It follows no redirects and uses no proxy.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Ports are the ports a request may go to, as Telegram allows for
// webhooks.
var Ports = []int{443, 80, 88, 8443}

// ErrRefused is the error of a request to an address or port the policy
// refuses.
var ErrRefused = errors.New("egress: address not allowed")

// Policy says which destinations are allowed.
type Policy struct {
	// AllowPrivate lifts the address and port rules: for tests and
	// self-hosters whose bots run on the same machine or network.
	AllowPrivate bool
}

// refused are the IPv4 and IPv6 ranges that are not the public Internet.
var refused = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", unspecified
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // carrier-grade NAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/96",           // unspecified, loopback, IPv4-compatible
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"64:ff9b:1::/48",  // local-use NAT64
		"fc00::/7",        // unique-local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// PublicAddr reports whether ip is an address on the public Internet.
// IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are judged as the
// IPv4 address they reach.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return PublicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return PublicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range refused {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// check judges a dialled address, "ip:port".
func (p Policy) check(address string) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	if !slices.Contains(Ports, int(ap.Port())) {
		return fmt.Errorf("%w: port %d", ErrRefused, ap.Port())
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address", ErrRefused, ap.Addr())
	}
	return nil
}

// Control is a net.Dialer's ControlContext: it runs after resolution,
// before each connection attempt, on the address being dialled.
func (p Policy) Control(_ context.Context, network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %s", ErrRefused, network)
	}
	return p.check(address)
}

// Client returns an HTTP client that dials through the policy, follows
// no redirect (a 3xx is the answer), uses no proxy from the environment,
// and gives up on a request after timeout.
func (p Policy) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, ControlContext: p.Control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckURL judges a URL before it is stored (setWebhook): an http or
// https URL to an allowed port whose host is, or resolves only to, public
// addresses. The dialer checks again at each request, as DNS may change.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return errors.New("an HTTP or HTTPS URL is required")
	}
	if u.User != nil {
		return errors.New("the URL must not carry a user name or password")
	}
	if p.AllowPrivate {
		return nil
	}
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if s := u.Port(); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("the URL's port is not a number")
		}
		port = n
	}
	if !slices.Contains(Ports, port) {
		return fmt.Errorf("ports %s are supported; %d is not", portList(), port)
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !PublicAddr(ip) {
			return errors.New("the address is not a public Internet address")
		}
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return errors.New("failed to resolve host")
	}
	for _, ip := range ips {
		if !PublicAddr(ip) {
			return errors.New("the host resolves to an address that is not a public Internet address")
		}
	}
	return nil
}

func portList() string {
	s := ""
	for i, p := range Ports {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(p)
	}
	return s
}

// Describe turns a request's error into what may be shown to the user
// who chose the URL: whether it timed out or failed, never an address,
// port or the dialler's own words, which would map the server's network.
func Describe(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "Connection timed out"
	}
	return "Connection refused"
}
