//go:build !linux

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// RaiseFileLimit is implemented on Linux only; elsewhere it checks nothing
// and reports an error only if need is large.
func RaiseFileLimit(need uint64) (uint64, error) {
	if need > 10_000 {
		return 0, fmt.Errorf("raising the open-file limit is only implemented on Linux; raise it yourself (ulimit -n) before opening %d connections", need)
	}
	return need, nil
}

func ownCPU() time.Duration { return 0 }

func controlNoPort(network, address string, c syscall.RawConn) error { return nil }

// Other systems (macOS) configure only 127.0.0.1 on lo0 by default.
const spreadSources = false
