package client

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/heraldim/herald"
)

// SecretStore is where a device keeps its secret chats: its private keys,
// its Signal sessions, the identities it trusts and the decrypted
// messages. It is a small key-value interface so that each kind of client
// can keep it where it keeps private things: DirStore puts it in files
// under the device's home directory; a browser can put it in IndexedDB.
//
// Keys are short paths such as "session/12.3"; values are opaque bytes.
type SecretStore interface {
	// Get returns the value of key, and false if there is none.
	Get(key string) ([]byte, bool, error)
	// Put stores a value durably.
	Put(key string, value []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(key string) error
	// Keys lists the keys that start with prefix, in no particular order.
	Keys(prefix string) ([]string, error)
	// Lock gives the caller the store to itself, across processes that
	// share it (a listening CLI and a sending one), until unlock is
	// called: a Signal session read, advanced and written back by two
	// processes at once would lose one's step.
	Lock(ctx context.Context) (unlock func(), err error)
}

// DirStore is a SecretStore in a directory: one file per key, mode 0600,
// in a directory of mode 0700.
type DirStore struct {
	Dir string
	mu  sync.Mutex // orders this process's users; the file lock orders processes
}

// SecretStore returns the device's secret-chat store, in the home
// directory's "secret" folder.
func (h Home) SecretStore() *DirStore {
	return &DirStore{Dir: filepath.Join(h.Dir, "secret")}
}

func (d *DirStore) file(key string) string {
	return filepath.Join(d.Dir, url.PathEscape(key))
}

// Get implements SecretStore.
func (d *DirStore) Get(key string) ([]byte, bool, error) {
	b, err := os.ReadFile(d.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// Put implements SecretStore: it writes a temporary file and renames it,
// so a crash leaves the old value or the new one, never half of one.
func (d *DirStore) Put(key string, value []byte) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(value); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), d.file(key))
}

// Delete implements SecretStore.
func (d *DirStore) Delete(key string) error {
	err := os.Remove(d.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Keys implements SecretStore.
func (d *DirStore) Keys(prefix string) ([]string, error) {
	ents, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == lockName {
			continue
		}
		k, err := url.PathUnescape(name)
		if err != nil {
			continue
		}
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

const lockName = ".lock"

// Lock implements SecretStore with an exclusive lock on a file in the
// directory (where the platform has file locks) and a mutex.
func (d *DirStore) Lock(ctx context.Context) (func(), error) {
	d.mu.Lock()
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	release, err := lockFile(ctx, filepath.Join(d.Dir, lockName))
	if err != nil {
		d.mu.Unlock()
		return nil, herald.Errorf(herald.Unavailable, "cannot lock the secret chat store in %s: %v", d.Dir, err)
	}
	return func() { release(); d.mu.Unlock() }, nil
}

// Wipe deletes everything in the store: a device's secret chats end with
// its keys.
func (d *DirStore) Wipe() error {
	keys, err := d.Keys("")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := d.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// MemoryStore is a SecretStore in memory, for tests and short-lived
// programs: its keys are gone when the program ends.
type MemoryStore struct {
	mu   sync.Mutex
	lock sync.Mutex
	m    map[string][]byte
}

// Get implements SecretStore.
func (s *MemoryStore) Get(key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return append([]byte(nil), v...), ok, nil
}

// Put implements SecretStore.
func (s *MemoryStore) Put(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// Delete implements SecretStore.
func (s *MemoryStore) Delete(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// Keys implements SecretStore.
func (s *MemoryStore) Keys(prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Lock implements SecretStore.
func (s *MemoryStore) Lock(context.Context) (func(), error) {
	s.lock.Lock()
	return s.lock.Unlock, nil
}
