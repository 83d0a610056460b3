package relay_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/heraldim/herald/relay"
	"github.com/pion/turn/v4"
)

func start(t *testing.T, allowPrivate bool) *relay.Server {
	t.Helper()
	s, err := relay.Start(relay.Config{Listen: "127.0.0.1:0", Secret: []byte("test secret"), AllowPrivate: allowPrivate,
		MaxAllocations: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client is a TURN client with the given credentials; it has no
// allocation yet.
func client(t *testing.T, s *relay.Server, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: s.Addr(), STUNServerAddr: s.Addr(), Username: user, Password: pass,
		Realm: "herald", Conn: conn, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// A user's credentials allocate a relay; data sent through it reaches a
// peer and the peer's reply comes back, when private peers are allowed.
func TestRelayCarriesData(t *testing.T) {
	s := start(t, true)
	cred, err := s.Credentials(42, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(cred.URLs) != 1 || !strings.HasPrefix(cred.URLs[0], "turn:127.0.0.1:") || !strings.HasSuffix(cred.Username, ":42") {
		t.Fatalf("credentials %+v", cred)
	}
	c := client(t, s, cred.Username, cred.Credential)
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relayed.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relayed.WriteTo([]byte("media"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "media" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if from.String() != relayed.LocalAddr().String() {
		t.Errorf("the peer heard from %v, want the relayed address %v", from, relayed.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("back"), from); err != nil {
		t.Fatal(err)
	}
	relayed.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = relayed.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "back" {
		t.Fatalf("relayed read %q, %v", buf[:n], err)
	}
}

// By default the relay refuses to send to loopback and private
// addresses: a hostile client must not reach the server's own network.
func TestRelayRefusesPrivatePeers(t *testing.T) {
	s := start(t, false)
	cred, _ := s.Credentials(7, time.Hour)
	c := client(t, s, cred.Username, cred.Credential)
	relayed, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relayed.Close()
	for _, addr := range []string{"127.0.0.1:9", "10.0.0.1:9", "192.168.1.1:9", "169.254.169.254:80", "[::1]:9"} {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreatePermission(a); err == nil {
			t.Errorf("CreatePermission(%s) succeeded; want it refused", addr)
		}
	}
}

// Wrong, forged and expired credentials allocate nothing; one user's
// allocations are capped.
func TestRelayCredentialsAndQuota(t *testing.T) {
	s := start(t, true)
	good, _ := s.Credentials(5, time.Hour)
	expired, _ := s.Credentials(5, -time.Minute)
	other, err := relay.Start(relay.Config{Listen: "127.0.0.1:0", Secret: []byte("another node's secret"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Credentials(5, time.Hour)
	other.Close()
	for _, tc := range []struct{ name, user, pass string }{
		{"a wrong password", good.Username, "not-it"},
		{"another user's name with this password", strings.TrimSuffix(good.Username, ":5") + ":6", good.Credential},
		{"expired", expired.Username, expired.Credential},
		{"from a relay with another secret", foreign.Username, foreign.Credential},
	} {
		c := client(t, s, tc.user, tc.pass)
		if conn, err := c.Allocate(); err == nil {
			conn.Close()
			t.Errorf("%s: Allocate succeeded", tc.name)
		}
	}
	for i := range 2 {
		c := client(t, s, good.Username, good.Credential)
		if _, err := c.Allocate(); err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
	}
	c := client(t, s, good.Username, good.Credential)
	if conn, err := c.Allocate(); err == nil {
		conn.Close()
		t.Error("a third allocation past the quota of 2 succeeded")
	}
}
