//go:build !unix

package e2e

import "os"

// Elsewhere the browser tests run one package at a time (go test -p 1).
func lock(*os.File) error   { return nil }
func unlock(*os.File) error { return nil }
