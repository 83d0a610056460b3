package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of the server's Prometheus /metrics: every sample
// keyed by its name and labels exactly as the server printed them, e.g.
// `process_cpu_seconds_total` or
// `herald_requests_total{method="auth.resume",kind="OK"}`.
type Metrics map[string]float64

// ParseMetrics reads the Prometheus text exposition format. Comments and
// lines it cannot read are skipped; timestamps are ignored.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// The name and labels end at the last '}' if there are labels,
		// else at the first space; label values may contain spaces.
		end := strings.IndexByte(line, ' ')
		if i := strings.IndexByte(line, '{'); i >= 0 && (end < 0 || i < end) {
			j := strings.LastIndexByte(line, '}')
			if j < 0 {
				continue
			}
			end = j + 1
		}
		if end <= 0 || end >= len(line) {
			continue
		}
		fields := strings.Fields(line[end:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		m[line[:end]] = v
	}
	return m, sc.Err()
}

// Get returns the value of a sample by its full key (0 if absent).
func (m Metrics) Get(key string) float64 { return m[key] }

// Sum adds the samples of a metric whose labels include every one of
// labels (each written as `name="value"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		base, rest, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// Scrape fetches and parses base + "/metrics".
func Scrape(ctx context.Context, base string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ServerSample is what a run reads from the server's metrics at one moment.
type ServerSample struct {
	At            time.Time
	RSS           float64 // process_resident_memory_bytes
	CPU           float64 // process_cpu_seconds_total
	HeapInuse     float64 // go_memstats_heap_inuse_bytes
	Goroutines    float64 // go_goroutines
	OpenFDs       float64 // process_open_fds
	MaxFDs        float64 // process_max_fds
	Connections   float64 // herald_connections
	Resumes       float64 // successful auth.resume requests (one per (re)connection of an SDK client with a token)
	SlowConsumers float64 // herald_slow_consumers_total
	MessagesIn    float64 // herald_messages_in_total
	MessagesOut   float64 // herald_messages_out_total
}

// SampleServer scrapes the server and picks out the figures a run reports.
// For a list of servers (CheckServers) it adds up their figures, so CPU
// and memory are the whole deployment's; MaxFDs is the smallest limit.
func SampleServer(ctx context.Context, base string) (ServerSample, error) {
	if strings.Contains(base, ",") {
		var sum ServerSample
		for i, b := range strings.Split(base, ",") {
			s, err := SampleServer(ctx, b)
			if err != nil {
				return ServerSample{}, err
			}
			if i == 0 || s.MaxFDs < sum.MaxFDs {
				sum.MaxFDs = s.MaxFDs
			}
			sum.RSS += s.RSS
			sum.CPU += s.CPU
			sum.HeapInuse += s.HeapInuse
			sum.Goroutines += s.Goroutines
			sum.OpenFDs += s.OpenFDs
			sum.Connections += s.Connections
			sum.Resumes += s.Resumes
			sum.SlowConsumers += s.SlowConsumers
			sum.MessagesIn += s.MessagesIn
			sum.MessagesOut += s.MessagesOut
		}
		sum.At = time.Now()
		return sum, nil
	}
	m, err := Scrape(ctx, base)
	if err != nil {
		return ServerSample{}, err
	}
	return ServerSample{
		At:            time.Now(),
		RSS:           m.Get("process_resident_memory_bytes"),
		CPU:           m.Get("process_cpu_seconds_total"),
		HeapInuse:     m.Get("go_memstats_heap_inuse_bytes"),
		Goroutines:    m.Get("go_goroutines"),
		OpenFDs:       m.Get("process_open_fds"),
		MaxFDs:        m.Get("process_max_fds"),
		Connections:   m.Get("herald_connections"),
		Resumes:       m.Sum("herald_requests_total", `method="auth.resume"`, `kind="OK"`),
		SlowConsumers: m.Get("herald_slow_consumers_total"),
		MessagesIn:    m.Get("herald_messages_in_total"),
		MessagesOut:   m.Get("herald_messages_out_total"),
	}, nil
}

// ServerStats compares two samples of the server.
type ServerStats struct {
	RSSBeforeMiB  float64 `json:"rss_before_mib"`
	RSSAfterMiB   float64 `json:"rss_after_mib"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUCores      float64 `json:"cpu_cores"` // CPU seconds per wall second: 2.0 is both cores of this machine
	Goroutines    float64 `json:"goroutines_after"`
	SlowConsumers float64 `json:"slow_consumers"`
}

// Diff summarises what happened on the server between two samples.
func Diff(before, after ServerSample) ServerStats {
	s := ServerStats{
		RSSBeforeMiB:  before.RSS / (1 << 20),
		RSSAfterMiB:   after.RSS / (1 << 20),
		CPUSeconds:    after.CPU - before.CPU,
		Goroutines:    after.Goroutines,
		SlowConsumers: after.SlowConsumers - before.SlowConsumers,
	}
	if wall := after.At.Sub(before.At).Seconds(); wall > 0 {
		s.CPUCores = s.CPUSeconds / wall
	}
	return s
}
