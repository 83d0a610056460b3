package main

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/heraldim/herald"
)

// The share of memory heraldd's soft limit takes: most of a container's
// limit, which is the server's own, and half of a machine's, which it
// usually shares with its database.
const (
	cgroupShare  = 0.8
	machineShare = 0.5
)

// memoryLimit decides the Go soft memory limit from -memory-limit (or
// HERALD_MEMORY_LIMIT): "auto" derives it from the memory the process may
// use (cgroup v2 memory.max if set, else MemTotal from /proc/meminfo),
// "off" sets none, and a size like 2GiB sets that. GOMEMLIMIT, which the
// Go runtime has applied already, wins over all of them. It returns the
// limit to set (0: leave the runtime's) and where it came from, for the
// log.
func memoryLimit(spec string, getenv func(string) string, readFile func(string) ([]byte, error)) (int64, string, error) {
	if v := getenv("GOMEMLIMIT"); v != "" {
		return 0, "GOMEMLIMIT=" + v, nil
	}
	switch strings.ToLower(strings.TrimSpace(spec)) {
	case "off", "0":
		return 0, "off", nil
	case "", "auto":
	default:
		n, err := herald.ParseSize(spec)
		if err != nil {
			return 0, "", fmt.Errorf("-memory-limit: %s, or auto or off", herald.ErrorMessage(err))
		}
		return n, "-memory-limit", nil
	}
	total := memTotal(readFile)
	if c := cgroupMax(readFile); c > 0 && (total == 0 || c < total) {
		return int64(float64(c) * cgroupShare), "cgroup memory.max", nil
	}
	if total > 0 {
		return int64(float64(total) * machineShare), "MemTotal", nil
	}
	return 0, "unknown machine memory", nil
}

// cgroupMax is the cgroup v2 memory.max of this process's cgroup, or 0
// when there is none or it is "max".
func cgroupMax(readFile func(string) ([]byte, error)) int64 {
	dir := "/"
	if b, err := readFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				dir = p
			}
		}
	}
	// In a cgroup namespace the process's own cgroup is the root.
	for _, d := range []string{dir, "/"} {
		b, err := readFile(path.Join("/sys/fs/cgroup", path.Clean("/"+d), "memory.max"))
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 {
			return n
		}
		return 0 // "max": no limit
	}
	return 0
}

// memTotal is the machine's memory from /proc/meminfo, or 0.
func memTotal(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n <= 0 {
				return 0
			}
			if len(f) < 3 || f[2] != "kB" {
				return n
			}
			return n * 1024
		}
	}
	return 0
}
