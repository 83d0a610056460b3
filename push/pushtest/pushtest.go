// Package pushtest is a push service for tests (RFC 8030) on a real
// socket. It holds the subscriptions' private keys, as a browser or a
// UnifiedPush distributor's app would, and for every push it checks the
// VAPID signature (RFC 8292) and decrypts the payload (RFC 8291): a push
// it cannot verify and open is answered 400 and counted as bad, so a
// test sees exactly what a device would.
package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Push is one push message as the device got it.
type Push struct {
	Endpoint string
	Payload  []byte // decrypted
	Topic    string
	Urgency  string
	TTL      string
	VAPIDKey string // the k= of the Authorization header, base64url
	At       time.Time
}

// Decode unmarshals the payload's JSON into v.
func (p Push) Decode(v any) error { return json.Unmarshal(p.Payload, v) }

// Sub is a subscription the service knows the private key of.
type Sub struct {
	Endpoint string
	P256dh   string // base64url, as PushSubscription.getKey gives it
	Auth     string
	priv     *ecdh.PrivateKey
	auth     []byte
}

// Service is the test push service.
type Service struct {
	srv *httptest.Server

	mu      sync.Mutex
	subs    map[string]*Sub
	got     []Push
	bad     []string         // why pushes were refused
	replies map[string][]int // endpoint → statuses to answer next, in order
	after   string           // Retry-After with those answers
	held    map[string]chan struct{}
	wake    chan struct{}
}

// New starts a push service on a loopback port; Close stops it.
func New() *Service {
	s := &Service{subs: map[string]*Sub{}, replies: map[string][]int{}, held: map[string]chan struct{}{}, wake: make(chan struct{}, 1)}
	// Assigned before it serves, so handlers see it.
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Start()
	return s
}

// Close stops the service.
func (s *Service) Close() { s.srv.Close() }

// URL is the service's base URL.
func (s *Service) URL() string { return s.srv.URL }

// Subscribe makes a subscription with fresh keys, as PushManager.subscribe
// does.
func (s *Service) Subscribe(name string) *Sub {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	sub := &Sub{Endpoint: s.srv.URL + "/push/" + name, P256dh: b64(k.PublicKey().Bytes()), Auth: b64(auth), priv: k, auth: auth}
	s.mu.Lock()
	s.subs[sub.Endpoint] = sub
	s.mu.Unlock()
	return sub
}

// AddKeys registers a subscription whose keys were made elsewhere (the
// CLI's): private is the P-256 private key and auth the secret, base64url.
func (s *Service) AddKeys(endpoint, private, auth string) error {
	pk, err := unb64(private)
	if err != nil {
		return err
	}
	k, err := ecdh.P256().NewPrivateKey(pk)
	if err != nil {
		return err
	}
	a, err := unb64(auth)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.subs[endpoint] = &Sub{Endpoint: endpoint, P256dh: b64(k.PublicKey().Bytes()), Auth: auth, priv: k, auth: a}
	s.mu.Unlock()
	return nil
}

// Reply makes the next pushes to endpoint get these statuses (then 201
// again), with Retry-After: retryAfter if it is not empty.
func (s *Service) Reply(endpoint, retryAfter string, statuses ...int) {
	s.mu.Lock()
	s.replies[endpoint] = append(s.replies[endpoint], statuses...)
	s.after = retryAfter
	s.mu.Unlock()
}

// Hold makes pushes to endpoint wait, as a slow push service's do, until
// release is called.
func (s *Service) Hold(endpoint string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.held[endpoint] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.held, endpoint)
			s.mu.Unlock()
			close(ch)
		})
	}
}

// Got returns the pushes accepted so far.
func (s *Service) Got() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.got...)
}

// GotFor returns the pushes accepted for endpoint.
func (s *Service) GotFor(endpoint string) []Push {
	var out []Push
	for _, p := range s.Got() {
		if p.Endpoint == endpoint {
			out = append(out, p)
		}
	}
	return out
}

// Bad returns why pushes were refused as malformed (should be none).
func (s *Service) Bad() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

// Wait waits until cond holds over the accepted pushes, or timeout.
func (s *Service) Wait(timeout time.Duration, cond func([]Push) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond(s.Got()) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-s.wake:
		case <-time.After(min(left, 50*time.Millisecond)):
		}
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := s.srv.URL + r.URL.Path
	s.mu.Lock()
	hold := s.held[endpoint]
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	sub := s.subs[endpoint]
	var status int
	if q := s.replies[endpoint]; len(q) > 0 {
		status, s.replies[endpoint] = q[0], q[1:]
	}
	after := s.after
	s.mu.Unlock()
	if r.Method != http.MethodPost || sub == nil {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err == nil {
		var k string
		k, err = verifyVAPID(r.Header.Get("Authorization"), s.srv.URL)
		if err == nil {
			var plain []byte
			plain, err = decrypt(sub, r.Header.Get("Content-Encoding"), body)
			if err == nil && r.Header.Get("TTL") == "" {
				err = errors.New("no TTL header (RFC 8030 5.2)")
			}
			if err == nil && status == 0 {
				s.mu.Lock()
				s.got = append(s.got, Push{Endpoint: endpoint, Payload: plain, Topic: r.Header.Get("Topic"),
					Urgency: r.Header.Get("Urgency"), TTL: r.Header.Get("TTL"), VAPIDKey: k, At: time.Now()})
				s.mu.Unlock()
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		}
	}
	if err != nil {
		s.mu.Lock()
		s.bad = append(s.bad, err.Error())
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status != 0 {
		if after != "" {
			w.Header().Set("Retry-After", after)
		}
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Location", endpoint+"/message")
	w.WriteHeader(http.StatusCreated)
}

// verifyVAPID checks "vapid t=JWT, k=KEY" (RFC 8292): an ES256 JWT
// signed by KEY whose aud is the push service's origin, with an exp in
// the next 24 hours and a sub. It returns KEY.
func verifyVAPID(header, origin string) (string, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return "", errors.New("no vapid Authorization")
	}
	var t, k string
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "t="); ok {
			t = v
		} else if v, ok := strings.CutPrefix(part, "k="); ok {
			k = v
		}
	}
	raw, err := unb64(k)
	if err != nil {
		return "", fmt.Errorf("vapid k: %v", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return "", fmt.Errorf("vapid k: %v", err)
	}
	parts := strings.Split(t, ".")
	if len(parts) != 3 {
		return "", errors.New("vapid t is not a JWT")
	}
	sig, err := unb64(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("vapid JWT signature is not 64 bytes")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("vapid JWT signature does not verify")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if b, err := unb64(parts[0]); err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Alg != "ES256" {
		return "", errors.New("vapid JWT header is not ES256")
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	b, err := unb64(parts[1])
	if err != nil || json.Unmarshal(b, &claims) != nil {
		return "", errors.New("vapid JWT claims do not decode")
	}
	now := time.Now().Unix()
	switch {
	case claims.Aud != origin:
		return "", fmt.Errorf("vapid aud %q, want %q", claims.Aud, origin)
	case claims.Exp <= now || claims.Exp > now+24*3600:
		return "", fmt.Errorf("vapid exp %d not within 24 hours", claims.Exp)
	case !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https:"):
		return "", fmt.Errorf("vapid sub %q is not a mailto: or https: URL", claims.Sub)
	}
	return k, nil
}

// decrypt opens an aes128gcm body (RFC 8188) with the keys RFC 8291
// derives from the subscription's private key and auth secret.
func decrypt(sub *Sub, encoding string, body []byte) ([]byte, error) {
	if encoding != "aes128gcm" {
		return nil, fmt.Errorf("Content-Encoding %q, want aes128gcm", encoding)
	}
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid is %d bytes, want the sender's 65-byte public key", idlen)
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("sender key: %v", err)
	}
	ct := body[21+idlen:]
	if uint32(len(ct)) > rs || len(ct) < 17 {
		return nil, fmt.Errorf("one record of %d bytes with rs %d", len(ct), rs)
	}
	secret, err := sub.priv.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), sub.priv.PublicKey().Bytes()...), asPub.Bytes()...)
	ikm, err := hkdf.Key(sha256.New, secret, sub.auth, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("payload does not decrypt: %v", err)
	}
	// The last record ends with 0x02 and then zero padding.
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, errors.New("the record has no last-record delimiter")
	}
	return plain[:i], nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
