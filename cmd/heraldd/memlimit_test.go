package main

import (
	"io/fs"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	meminfo := "MemTotal:        8388608 kB\nMemFree:         1000 kB\n" // 8 GiB
	tests := []struct {
		name   string
		spec   string
		env    map[string]string
		files  map[string]string
		want   int64
		source string
		bad    bool
	}{
		{name: "GOMEMLIMIT wins", spec: "2GiB", env: map[string]string{"GOMEMLIMIT": "3GiB"},
			files: map[string]string{"/proc/meminfo": meminfo}, want: 0, source: "GOMEMLIMIT=3GiB"},
		{name: "a size", spec: "1536MiB", want: 1536 << 20, source: "-memory-limit"},
		{name: "off", spec: "off", files: map[string]string{"/proc/meminfo": meminfo}, want: 0, source: "off"},
		{name: "zero is off", spec: "0", want: 0, source: "off"},
		{name: "not a size", spec: "lots", bad: true},
		{name: "machine: half of MemTotal", spec: "auto",
			files: map[string]string{"/proc/meminfo": meminfo}, want: 4 * gib, source: "MemTotal"},
		{name: "empty spec is auto", spec: "",
			files: map[string]string{"/proc/meminfo": meminfo}, want: 4 * gib, source: "MemTotal"},
		{name: "own cgroup's memory.max", spec: "auto", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/system.slice/herald.service\n",
			"/sys/fs/cgroup/system.slice/herald.service/memory.max": "1073741824\n",
		}, want: 858993459, source: "cgroup memory.max"},
		{name: "cgroup namespace: the root's memory.max", spec: "auto", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "2147483648\n",
		}, want: 1717986918, source: "cgroup memory.max"},
		{name: "memory.max is max", spec: "auto", files: map[string]string{
			"/proc/meminfo": meminfo, "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n",
		}, want: 4 * gib, source: "MemTotal"},
		{name: "cgroup above the machine", spec: "auto", files: map[string]string{
			"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "68719476736\n",
		}, want: 4 * gib, source: "MemTotal"},
		{name: "nothing known", spec: "auto", want: 0, source: "unknown machine memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			read := func(name string) ([]byte, error) {
				if s, ok := tt.files[name]; ok {
					return []byte(s), nil
				}
				return nil, fs.ErrNotExist
			}
			got, source, err := memoryLimit(tt.spec, getenv, read)
			if tt.bad {
				if err == nil {
					t.Fatalf("%q accepted as %d", tt.spec, got)
				}
				return
			}
			if err != nil || got != tt.want || source != tt.source {
				t.Fatalf("got %d from %q, %v; want %d from %q", got, source, err, tt.want, tt.source)
			}
		})
	}
}
