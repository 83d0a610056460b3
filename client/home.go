package client

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/heraldim/herald"
)

// Credentials are what a device keeps between runs: who it is, its bearer
// token and how far it has read the update log. The file is mode 0600.
type Credentials struct {
	Server   string `json:"server"`
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	DeviceID int64  `json:"device_id"`
	Token    string `json:"token"`
	Pts      int64  `json:"pts"`
	// ChannelPts: per broadcast chat, the last position of its log seen.
	ChannelPts map[int64]int64 `json:"channel_pts,omitempty"`
}

// Home is a device's home directory.
type Home struct {
	Dir string
}

func (h Home) path() string { return filepath.Join(h.Dir, "credentials.json") }

// Load reads the saved credentials. NotFound if the device is not logged in.
func (h Home) Load() (Credentials, error) {
	var c Credentials
	b, err := os.ReadFile(h.path())
	if errors.Is(err, fs.ErrNotExist) {
		return c, herald.Errorf(herald.Unauthenticated, "not logged in (run herald login or herald signup)")
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, herald.Errorf(herald.Invalid, "%s is damaged: %v", h.path(), err)
	}
	return c, nil
}

// Save writes the credentials atomically with mode 0600.
func (h Home) Save(c Credentials) error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(h.Dir, ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
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
	return os.Rename(tmp.Name(), h.path())
}

// Clear removes the saved credentials.
func (h Home) Clear() error {
	err := os.Remove(h.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
