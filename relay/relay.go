// Package relay is Herald's TURN server (RFC 8656, on pion/turn): it
// carries a call's media between two devices that cannot reach each other
// directly. It relays what WebRTC already encrypted (DTLS-SRTP) and never
// decodes it.
//
// Credentials are the TURN REST API's: a username "EXPIRY:USERID" and a
// password that is an HMAC of it under a secret every node derives from
// the master key, so any node can hand out credentials any node accepts.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldim/herald/egress"
	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

// Config configures the relay.
type Config struct {
	// Listen is the UDP address TURN listens on ("0.0.0.0:3478").
	Listen string
	// PublicIP is the address devices reach the relay at, written into
	// relayed candidates. Empty: Listen's address, which must then be a
	// specific one.
	PublicIP string
	// Secret keys the credentials; nodes that share it accept each
	// other's.
	Secret []byte
	// AllowPrivate lets the relay send to peers on loopback and private
	// addresses. Off, only public addresses are reachable through it, so
	// a client cannot use the relay to probe the network behind it.
	AllowPrivate bool
	// MaxAllocations bounds one user's relay allocations at once.
	MaxAllocations int
	Log            *slog.Logger
}

// ICEServer is what a WebRTC client configures to use the relay.
type ICEServer struct {
	URLs       []string
	Username   string
	Credential string
}

// Server is a running relay.
type Server struct {
	cfg    Config
	conn   net.PacketConn
	turn   *turn.Server
	secret string
	url    string

	mu    sync.Mutex
	alloc map[string]int // live allocations per user id
}

// realm names the relay in TURN's long-term credential mechanism.
const realm = "herald"

// Start listens and serves TURN until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = 8
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("relay: no secret")
	}
	conn, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen: %w", err)
	}
	local := conn.LocalAddr().(*net.UDPAddr)
	public := net.ParseIP(cfg.PublicIP)
	if cfg.PublicIP == "" {
		public = local.IP
	}
	if public == nil || public.IsUnspecified() {
		conn.Close()
		return nil, fmt.Errorf("relay: give the address devices reach it at (-media-public-ip); %q is not one", cfg.PublicIP)
	}
	s := &Server{cfg: cfg, conn: conn, secret: string(cfg.Secret), alloc: map[string]int{}}
	s.url = "turn:" + net.JoinHostPort(public.String(), strconv.Itoa(local.Port)) + "?transport=udp"
	bind := local.IP.String()
	if local.IP.IsUnspecified() {
		bind = "0.0.0.0"
	}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:         realm,
		LoggerFactory: quiet{},
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(s.secret, quiet{}.NewLogger("turn")),
		QuotaHandler:  s.quota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, username, _ string, _ net.Addr, _ int) { s.count(username, 1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, username, _ string) { s.count(username, -1) },
		},
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: public, Address: bind},
			PermissionHandler:     s.permit,
		}},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	return s, nil
}

// Addr is the UDP address the relay listens on.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Close stops the relay and drops every allocation.
func (s *Server) Close() error { return s.turn.Close() }

// Credentials returns what userID's device needs to use the relay until
// ttl from now.
func (s *Server) Credentials(userID int64, ttl time.Duration) (ICEServer, error) {
	user, pass, err := turn.GenerateLongTermTURNRESTCredentials(s.secret, strconv.FormatInt(userID, 10), ttl)
	return ICEServer{URLs: []string{s.url}, Username: user, Credential: pass}, err
}

// permit decides which peers an allocation may send to: the relay must
// not become a way into the server's own network.
func (s *Server) permit(_ net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	if s.cfg.AllowPrivate || egress.PublicAddr(ip.Unmap()) {
		return true
	}
	s.cfg.Log.Warn("relay: refused a peer address that is not public")
	return false
}

// quota refuses an allocation past the user's limit (486 Allocation
// Quota Reached).
func (s *Server) quota(username, _ string, _ net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alloc[user(username)] < s.cfg.MaxAllocations
}

func (s *Server) count(username string, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := user(username)
	if s.alloc[u] += d; s.alloc[u] <= 0 {
		delete(s.alloc, u)
	}
}

// user is the user id in a TURN REST username, "EXPIRY:USERID".
func user(username string) string {
	_, u, _ := strings.Cut(username, ":")
	return u
}

// quiet drops pion's own logging: it would name peers' addresses at
// levels operators do not ask for; the relay logs what matters itself.
type quiet struct{}

func (quiet) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}
