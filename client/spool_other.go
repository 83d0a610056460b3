//go:build !js

package client

import "os"

// newSpool returns a temporary file for an encrypted attachment on its
// way up or down: the ciphertext is read twice on upload (to hash, then
// to send) and must be whole before it is decrypted on download. It is
// removed when closed.
func newSpool() (spool, error) {
	f, err := os.CreateTemp("", "herald-secret-*")
	if err != nil {
		return nil, err
	}
	return tempSpool{f}, nil
}

type tempSpool struct{ *os.File }

func (t tempSpool) Close() error {
	err := t.File.Close()
	os.Remove(t.Name())
	return err
}
