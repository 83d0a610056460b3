package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPublicAddr(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.168.1.1", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"169.254.169.254", false}, // cloud metadata
		{"169.254.0.1", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"255.255.255.255", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"::", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"ff02::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"::127.0.0.1", false},        // IPv4-compatible
		{"64:ff9b::7f00:1", false},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false}, // NAT64 of 169.254.169.254
		{"64:ff9b:1::808:808", false}, // local-use NAT64
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"2002:a00:1::1", false},      // 6to4 of 10.0.0.1
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"172.32.0.1", true},
		{"::ffff:8.8.8.8", true},
		{"64:ff9b::808:808", true}, // NAT64 of 8.8.8.8
		{"2606:4700:4700::1111", true},
		{"2002:808:808::1", true},
	} {
		ip := netip.MustParseAddr(tc.ip)
		if got := PublicAddr(ip); got != tc.public {
			t.Errorf("PublicAddr(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

func TestControl(t *testing.T) {
	strict := Policy{}
	for _, tc := range []struct {
		network, addr string
		ok            bool
	}{
		{"tcp", "127.0.0.1:443", false},
		{"tcp", "[::1]:443", false},
		{"tcp", "10.0.0.5:80", false},
		{"tcp", "169.254.169.254:80", false},
		{"tcp6", "[::ffff:127.0.0.1]:443", false},
		{"tcp6", "[64:ff9b::a9fe:a9fe]:80", false},
		{"tcp", "8.8.8.8:443", true},
		{"tcp", "8.8.8.8:80", true},
		{"tcp", "8.8.8.8:88", true},
		{"tcp", "8.8.8.8:8443", true},
		{"tcp", "8.8.8.8:22", false},
		{"tcp", "8.8.8.8:6379", false},
		{"udp", "8.8.8.8:443", false},
		{"tcp", "not an address", false},
	} {
		err := strict.Control(context.Background(), tc.network, tc.addr, nil)
		if (err == nil) != tc.ok {
			t.Errorf("Control(%s, %s) = %v, want ok=%v", tc.network, tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("Control(%s, %s) = %v, not ErrRefused", tc.network, tc.addr, err)
		}
	}
	if err := (Policy{AllowPrivate: true}).Control(context.Background(), "tcp", "127.0.0.1:1234", nil); err != nil {
		t.Errorf("AllowPrivate refused loopback: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url, want string // want: a part of the error, "" for allowed
	}{
		{"http://127.0.0.1/hook", "not a public"},
		{"https://127.0.0.1:8443/hook", "not a public"},
		{"http://[::1]/hook", "not a public"},
		{"http://10.1.2.3/hook", "not a public"},
		{"http://169.254.169.254/latest/meta-data/", "not a public"},
		{"http://[::ffff:169.254.169.254]/", "not a public"},
		{"http://localhost/hook", "not a public"},
		{"http://8.8.8.8:6379/", "ports 443, 80, 88, 8443"},
		{"http://127.0.0.1:1/hook", "ports"},
		{"ftp://8.8.8.8/", "HTTP or HTTPS"},
		{"https://user:pw@8.8.8.8/", "user name"},
		{"https://8.8.8.8/hook", ""},
		{"https://8.8.8.8:8443/hook", ""},
		{"http://[2606:4700:4700::1111]:88/hook", ""},
	} {
		err := Policy{}.CheckURL(ctx, tc.url)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckURL(%s) = %v, want allowed", tc.url, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckURL(%s) = %v, want an error with %q", tc.url, err, tc.want)
		}
	}
	if err := (Policy{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1:1/hook"); err != nil {
		t.Errorf("AllowPrivate refused a loopback URL: %v", err)
	}
}

// TestClientRefusesLoopback: the strict client cannot reach a server on
// loopback, even when the URL names it by a host name, and its error
// describes nothing of where it tried.
func TestClientRefusesLoopback(t *testing.T) {
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer srv.Close()
	c := Policy{}.Client(5 * time.Second)
	for _, u := range []string{srv.URL, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)} {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s: reached it", u)
		}
		if !errors.Is(err, ErrRefused) {
			t.Errorf("GET %s: %v, not refused by the policy", u, err)
		}
		if d := Describe(err); d != "Connection refused" {
			t.Errorf("Describe = %q", d)
		}
	}
	if hit {
		t.Fatal("the loopback server was reached")
	}
}

// TestClientNoRedirect: a redirect is the answer, not followed, even to
// an allowed address.
func TestClientNoRedirect(t *testing.T) {
	inner := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { inner = true }))
	defer target.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	resp, err := Policy{AllowPrivate: true}.Client(5*time.Second).Post(redir.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || inner {
		t.Fatalf("status %d, redirect followed: %v", resp.StatusCode, inner)
	}
}

// TestClientNoProxy: a proxy from the environment would carry the
// request past the dialer's checks (and Go exempts only loopback from it).
func TestClientNoProxy(t *testing.T) {
	tr, ok := Policy{}.Client(time.Second).Transport.(*http.Transport)
	if !ok || tr.Proxy != nil || tr.DialContext == nil {
		t.Fatalf("transport %#v: want no proxy and the policy's dialer", tr)
	}
}

// TestDescribe: what the URL's owner is told names no address or port.
func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 6379}, Err: os.ErrDeadlineExceeded}, "Connection timed out"},
		{&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 22}, Err: syscall.ECONNREFUSED}, "Connection refused"},
		{fmt.Errorf("dial: %w", ErrRefused), "Connection refused"},
		{errors.New("tls: failed to verify certificate: x509: certificate is valid for internal.corp, not example.org"), "Connection refused"},
	} {
		if got := Describe(tc.err); got != tc.want {
			t.Errorf("Describe(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
