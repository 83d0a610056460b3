package botapi

import (
	"crypto/sha256"
	"io"
	"os"

	"github.com/heraldim/herald/crypto"
)

// spooled is an uploaded file held for the length of its request,
// encrypted under a key that lives only in memory: what reaches the disk
// is ciphertext, and it is removed when the request ends.
type spooled struct {
	name   string
	size   int64 // plaintext bytes
	sha256 []byte
	f      *os.File
	enc    int64 // ciphertext bytes
	key    []byte
}

// spool encrypts r into a new file in dir (the temp directory if empty).
func spool(dir, name string, r io.Reader) (*spooled, error) {
	f, err := os.CreateTemp(dir, "herald-bot-upload-*")
	if err != nil {
		return nil, err
	}
	s := &spooled{name: name, f: f}
	w, key, err := crypto.EncryptFile(f)
	if err != nil {
		s.close()
		return nil, err
	}
	h := sha256.New()
	s.size, err = io.Copy(io.MultiWriter(w, h), r)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		s.close()
		return nil, err
	}
	if s.enc, err = f.Seek(0, io.SeekEnd); err != nil {
		s.close()
		return nil, err
	}
	s.key, s.sha256 = key, h.Sum(nil)
	return s, nil
}

// open returns the plaintext from the start; it may be called more than
// once.
func (s *spooled) open() (io.ReadCloser, error) {
	r, err := crypto.DecryptFile(io.NewSectionReader(s.f, 0, s.enc), s.key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}

func (s *spooled) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}
