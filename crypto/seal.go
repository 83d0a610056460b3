// Package crypto holds Herald's at-rest encryption: message bodies are
// sealed with keys derived from the server's master key before any store
// sees them, so a copy of the database alone reveals no message text.
// Content that must become unreadable at a set time is sealed by a KeyRing
// instead, whose per-time-bucket keys are destroyed when their time ends.
//
// It uses only the standard library's audited primitives (AES-256-GCM,
// HKDF-SHA-256); nothing here is a home-made cipher or KDF.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the size of the master key in bytes.
const KeySize = 32

// sealVersion is the first byte of every sealed value; it names the format
// and key derivation so both can change without rewriting old rows.
const sealVersion = 1

// Sealer seals and opens values bound to a context (for message bodies, the
// chat id), so a sealed body copied to another chat does not open.
type Sealer struct {
	aead cipher.AEAD
	bus  cipher.AEAD // for SealEvent: bus events, under a key of their own
	mac  []byte      // for MAC: signed download links
}

// NewSealer derives the body key from the master key.
func NewSealer(master []byte) (*Sealer, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("crypto: master key must be %d bytes, got %d", KeySize, len(master))
	}
	key, err := hkdf.Key(sha256.New, master, nil, "herald message body v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, master, nil, "herald link signature v1", 32)
	if err != nil {
		return nil, err
	}
	busKey, err := hkdf.Key(sha256.New, master, nil, "herald bus event v1", 32)
	if err != nil {
		return nil, err
	}
	busBlock, err := aes.NewCipher(busKey)
	if err != nil {
		return nil, err
	}
	busAEAD, err := cipher.NewGCM(busBlock)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, bus: busAEAD, mac: mac}, nil
}

// SealEvent encrypts a bus event's payload and authenticates it together
// with the event's header, under a key used for nothing else: every node
// sharing the master key opens it, nobody else can read or forge it, and
// a sealed event never opens as a message body (nor one as the other).
// It appends to dst (which may be the header itself) and returns the
// result.
func (s *Sealer) SealEvent(dst, header, plaintext []byte) []byte {
	ns := s.bus.NonceSize()
	n := len(dst)
	dst = append(dst, make([]byte, ns)...)
	rand.Read(dst[n : n+ns])
	nonce := dst[n : n+ns]
	// Seal's additional data must not overlap dst, and the header may be
	// dst's own prefix: it is a few bytes, so copy it.
	ad := append([]byte(nil), header...)
	return s.bus.Seal(dst, nonce, plaintext, ad)
}

// OpenEvent decrypts what SealEvent sealed with the same header.
func (s *Sealer) OpenEvent(header, sealed []byte) ([]byte, error) {
	ns := s.bus.NonceSize()
	if len(sealed) < ns+s.bus.Overhead() {
		return nil, ErrCorrupt
	}
	pt, err := s.bus.Open(nil, sealed[:ns], sealed[ns:], header)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// MAC returns an HMAC-SHA-256 of data under a key derived from the master
// key, so every node sharing the master key can check what any node
// signed (short-lived download links).
func (s *Sealer) MAC(data []byte) []byte {
	h := hmac.New(sha256.New, s.mac)
	h.Write(data)
	return h.Sum(nil)
}

// CheckMAC reports, in constant time, whether mac is MAC(data).
func (s *Sealer) CheckMAC(data, mac []byte) bool {
	return hmac.Equal(s.MAC(data), mac)
}

func bind(id int64) []byte {
	var b [9]byte
	b[0] = sealVersion
	binary.BigEndian.PutUint64(b[1:], uint64(id))
	return b[:]
}

// Seal encrypts plaintext bound to id.
func (s *Sealer) Seal(id int64, plaintext []byte) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1 : 1+ns])
	return s.aead.Seal(out, out[1:1+ns], plaintext, bind(id))
}

// ErrCorrupt reports a sealed value that does not open: tampered with,
// bound to another id, or sealed under another master key.
var ErrCorrupt = errors.New("crypto: sealed value does not open")

// Open decrypts a value sealed by Seal with the same id.
func (s *Sealer) Open(id int64, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrCorrupt
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], bind(id))
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// LoadOrCreateMasterKey reads the master key from path, or creates it (mode
// 0600) with fresh random bytes if the file does not exist.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != KeySize {
			return nil, fmt.Errorf("master key %s has %d bytes, want %d", path, len(b), KeySize)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, KeySize)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	// Without the directory fsync a power cut could lose the new name, and
	// with it the key to everything sealed since.
	return key, syncDir(filepath.Dir(path))
}
