//go:build js

package client

import (
	"errors"
	"io"
)

// newSpool returns an in-memory spool in the browser, which has no
// temporary files: the page caps the size of a secret attachment so that
// the ciphertext fits.
func newSpool() (spool, error) { return &memSpool{}, nil }

// memSpool is a growable byte slice with a read/write offset.
type memSpool struct {
	b   []byte
	off int64
}

func (m *memSpool) Write(p []byte) (int, error) {
	if end := m.off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	n := copy(m.b[m.off:], p)
	m.off += int64(n)
	return n, nil
}

func (m *memSpool) Read(p []byte) (int, error) {
	if m.off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[m.off:])
	m.off += int64(n)
	return n, nil
}

func (m *memSpool) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += m.off
	case io.SeekEnd:
		offset += int64(len(m.b))
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	m.off = offset
	return offset, nil
}

func (m *memSpool) Close() error {
	m.b = nil
	return nil
}
