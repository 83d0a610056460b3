//go:build !unix

package client

import "context"

// lockFile has nothing to lock where there are no file locks (the
// browser); DirStore's mutex still orders this process.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
