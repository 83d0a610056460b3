package bench

import (
	"fmt"
	"syscall"
	"time"
)

// RaiseFileLimit raises this process's open-file limit so that need
// descriptors fit: the soft limit up to the hard one, and the hard one too
// when the process may (root). It returns the limit now in force, and an
// error that says what to do if need still does not fit.
func RaiseFileLimit(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if need > lim.Max {
		want := syscall.Rlimit{Cur: need, Max: need}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			return need, nil
		}
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, fmt.Errorf("raising the open-file limit to %d: %w", lim.Max, err)
		}
	}
	if need > lim.Cur {
		return lim.Cur, fmt.Errorf("this run needs about %d open files but the limit is %d (hard limit %d) and this process may not raise it: "+
			"run as root, or raise it first (e.g. `ulimit -Hn %d; ulimit -n %d`, or LimitNOFILE in a systemd unit; the kernel's ceiling is /proc/sys/fs/nr_open), or ask for fewer connections",
			need, lim.Cur, lim.Max, need, need)
	}
	return lim.Cur, nil
}

// ownCPU is the CPU time this process has used, user plus system.
func ownCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h): with it, a
// socket bound to a source address gets its port at connect time, chosen
// for the whole 4-tuple, so each source address has its own ~28k ports.
const ipBindAddressNoPort = 24

// controlNoPort is a net.Dialer.Control that sets IP_BIND_ADDRESS_NO_PORT.
func controlNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// spreadSources reports whether this OS routes all of 127.0.0.0/8 to the
// loopback interface, so client sockets may use any 127.x.y.z source.
const spreadSources = true
