// Package e2e installs the browser tests' npm dependencies (web/e2e) once
// for every test binary that needs them. go test runs packages in
// parallel, and `npm ci` first deletes node_modules: two installs at once,
// or one under a running browser test, break each other. So the install
// holds a lock shared by processes and is skipped when node_modules
// already matches package-lock.json.
package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Install makes dir's node_modules match its package-lock.json.
func Install(dir string) error {
	lockFile, err := os.OpenFile(filepath.Join(dir, ".npm-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lockFile.Close()
	if err := lock(lockFile); err != nil {
		return err
	}
	defer unlock(lockFile)
	want, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(want)
	stamp := filepath.Join(dir, "node_modules", ".herald-installed")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == hex.EncodeToString(sum[:]) {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	return os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o644)
}
