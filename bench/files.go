package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/client"
)

// FilesConfig configures the files scenario.
type FilesConfig struct {
	Server string
	// Size is the file's length in bytes (default 1 GiB).
	Size int64
	// Ranges is how many random range reads follow the download (default
	// 200), each RangeSize bytes (default 1 MiB) from the middle half of
	// the file.
	Ranges    int
	RangeSize int64
	// Seed picks the file's content (0: a random seed, reported).
	Seed uint64
	// Timeout bounds each phase: the upload, the download, the range
	// reads (default 30 minutes).
	Timeout time.Duration
	// SampleEvery is how often the server's /metrics is read for its
	// resident memory during the upload and the download (default 250 ms).
	SampleEvery time.Duration
	Accounts    *Accounts
	Log         io.Writer
}

func (c *FilesConfig) defaults() {
	if c.Size <= 0 {
		c.Size = 1 << 30
	}
	if c.Ranges < 0 {
		c.Ranges = 0
	} else if c.Ranges == 0 {
		c.Ranges = 200
	}
	if c.RangeSize <= 0 {
		c.RangeSize = 1 << 20
	}
	c.RangeSize = min(c.RangeSize, c.Size)
	if c.Seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		c.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Minute
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 250 * time.Millisecond
	}
	if c.Accounts == nil {
		c.Accounts = &Accounts{Parallel: 1}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// FilesResult is the outcome of the files scenario. MB is 10^6 bytes.
type FilesResult struct {
	Scenario   string `json:"scenario"`
	FileID     string `json:"file_id"`
	Size       int64  `json:"size_bytes"`
	Seed       uint64 `json:"seed"`
	SHA256     string `json:"sha256"`
	ChunkBytes int64  `json:"chunk_bytes"` // bytes per PATCH (client.UploadChunk)

	// The client's SHA-256 pass over the content before the first byte is
	// sent (plus the POST creating the upload, one round trip).
	HashSecs float64 `json:"hash_s"`
	HashMBps float64 `json:"hash_mb_per_s"`
	// The upload proper: from the upload's creation to the file, every
	// PATCH including the last, whose answer waits for the server to make
	// the upload a file.
	UploadSecs float64 `json:"upload_s"`
	UploadMBps float64 `json:"upload_mb_per_s"`
	// The PATCHes before the last: bytes on the wire and stored.
	TransferSecs float64 `json:"transfer_s"`
	TransferMBps float64 `json:"transfer_mb_per_s"`
	Chunk        Latency `json:"chunk_latency"` // one PATCH, all but the last
	// The last PATCH, and within it the estimated time the server spent
	// finishing (the last PATCH minus a typical chunk of its size): reading
	// the parts back, hashing, re-encrypting into the file.
	LastPatchSecs float64     `json:"last_patch_s"`
	FinishSecs    float64     `json:"finish_s"`
	UploadServer  PhaseServer `json:"upload_server"`

	// The whole file downloaded once and its SHA-256 compared with the
	// upload's.
	DownloadSecs     float64     `json:"download_s"`
	DownloadMBps     float64     `json:"download_mb_per_s"`
	DownloadVerified bool        `json:"download_verified"`
	DownloadServer   PhaseServer `json:"download_server"`

	// Random range reads, one at a time over plain HTTP with the bearer
	// token, each checked byte for byte against the generator.
	Ranges       int         `json:"ranges"`
	RangeSize    int64       `json:"range_size_bytes"`
	RangesOK     int         `json:"ranges_ok"`
	RangesBad    int         `json:"ranges_bad"`       // wrong status, length or bytes
	RangeLatency Latency     `json:"range_latency"`    // request to the range's last byte
	RangeFirst   Latency     `json:"range_first_byte"` // request to the answer's headers
	RangeServer  PhaseServer `json:"range_server"`

	Errors       map[string]int    `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// PhaseServer is what one phase of the files scenario cost the server,
// read from its /metrics: resident memory before, at its peak (sampled
// every SampleEvery) and after; Go heap at its peak; CPU. GeneratorCPU is
// this process's share of the machine meanwhile.
type PhaseServer struct {
	RSSBeforeMiB float64 `json:"rss_before_mib"`
	RSSPeakMiB   float64 `json:"rss_peak_mib"`
	RSSAfterMiB  float64 `json:"rss_after_mib"`
	HeapPeakMiB  float64 `json:"heap_peak_mib"`
	Samples      int     `json:"samples"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUCores     float64 `json:"cpu_cores"`
	CPUPerGiB    float64 `json:"cpu_seconds_per_gib,omitempty"`
	GeneratorCPU float64 `json:"generator_cpu_cores"`
}

// RunFiles uploads a file of Size pseudo-random bytes generated on the
// fly (never held in memory), downloads it whole, and makes Ranges random
// range reads of it, measuring each and what it cost the server.
func RunFiles(ctx context.Context, cfg FilesConfig) (FilesResult, error) {
	cfg.defaults()
	res := FilesResult{
		Scenario: "files", Size: cfg.Size, Seed: cfg.Seed, ChunkBytes: client.UploadChunk,
		Ranges: cfg.Ranges, RangeSize: cfg.RangeSize, Errors: map[string]int{}, ErrorSamples: map[string]string{},
	}
	accs, err := cfg.Accounts.Take(ctx, cfg.Server, 1)
	if err != nil {
		return res, err
	}
	acc := accs[0]
	c, err := client.New(client.Options{Server: cfg.Server, Token: acc.Token})
	if err != nil {
		return res, err
	}
	defer c.Close()
	sampler := startSampler(ctx, cfg.Server, cfg.SampleEvery)
	defer sampler.stop()
	content := NewContent(cfg.Seed, cfg.Size)

	// Upload.
	fmt.Fprintf(cfg.Log, "uploading %s of generated content (seed %d) as %s\n", humanSize(cfg.Size), cfg.Seed, acc.Username)
	ph, err := sampler.begin(ctx)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	var (
		marks    []progressMark
		lastLog  = time.Now()
		uctx, uc = context.WithTimeout(ctx, cfg.Timeout)
	)
	t0 := time.Now()
	file, err := c.UploadFile(uctx, content, cfg.Size, client.UploadOptions{
		Name: fmt.Sprintf("herald-bench-%d.bin", cfg.Seed),
		Progress: func(done, total int64) {
			if len(marks) == 0 {
				// The hashing pass is over: the server's work starts now.
				if p, err := sampler.begin(uctx); err == nil {
					ph = p
				}
			}
			now := time.Now()
			marks = append(marks, progressMark{at: now, off: done})
			if now.Sub(lastLog) > 5*time.Second {
				lastLog = now
				fmt.Fprintf(cfg.Log, "  uploaded %s of %s\n", humanSize(done), humanSize(total))
			}
		},
	})
	end := time.Now()
	uc()
	res.UploadServer = sampler.end(ctx, ph, cfg.Size)
	if err != nil {
		res.note("upload", err)
		return res, fmt.Errorf("upload: %w", err)
	}
	res.FileID, res.SHA256 = file.Id, file.Sha256
	res.uploadTimes(t0, end, marks)
	fmt.Fprintf(cfg.Log, "uploaded as file %s: hash %.1f s, upload %.1f s (%.0f MB/s)\n", file.Id, res.HashSecs, res.UploadSecs, res.UploadMBps)

	// Whole download.
	ph, err = sampler.begin(ctx)
	if err != nil {
		return res, fmt.Errorf("reading the server's metrics: %w", err)
	}
	dctx, dc := context.WithTimeout(ctx, cfg.Timeout)
	h := sha256.New()
	t0 = time.Now()
	n, got, err := c.DownloadRange(dctx, file.Id, 0, h, nil)
	res.DownloadSecs = time.Since(t0).Seconds()
	dc()
	res.DownloadServer = sampler.end(ctx, ph, cfg.Size)
	if err != nil {
		res.note("download", err)
		return res, fmt.Errorf("download: %w", err)
	}
	res.DownloadMBps = mbps(n, res.DownloadSecs)
	sum := hex.EncodeToString(h.Sum(nil))
	res.DownloadVerified = n == cfg.Size && sum == file.Sha256 && got.Sha256 == file.Sha256
	fmt.Fprintf(cfg.Log, "downloaded %s in %.1f s (%.0f MB/s), SHA-256 matches: %v\n", humanSize(n), res.DownloadSecs, res.DownloadMBps, res.DownloadVerified)
	if !res.DownloadVerified {
		res.note("download", fmt.Errorf("downloaded %d bytes with SHA-256 %s; uploaded %d with %s (ETag %s)", n, sum, cfg.Size, file.Sha256, got.Sha256))
	}

	// Range reads.
	if cfg.Ranges > 0 {
		ph, err = sampler.begin(ctx)
		if err != nil {
			return res, fmt.Errorf("reading the server's metrics: %w", err)
		}
		rctx, rc := context.WithTimeout(ctx, cfg.Timeout)
		res.rangeReads(rctx, cfg, acc.Token, content)
		rc()
		res.RangeServer = sampler.end(ctx, ph, 0)
		fmt.Fprintf(cfg.Log, "%d of %d range reads of %s correct\n", res.RangesOK, cfg.Ranges, humanSize(cfg.RangeSize))
	}

	if len(res.ErrorSamples) == 0 {
		res.ErrorSamples = nil
	}
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case !res.DownloadVerified:
		return res, fmt.Errorf("the downloaded file differs from the upload")
	case res.RangesBad > 0:
		return res, fmt.Errorf("%d of %d range reads were wrong (%s)", res.RangesBad, cfg.Ranges, kinds(res.Errors))
	}
	return res, nil
}

// progressMark is one call of the upload's Progress: when, and how many
// bytes the server had then.
type progressMark struct {
	at  time.Time
	off int64
}

// uploadTimes splits the upload into its phases from the Progress calls:
// the first (offset 0) comes after the hashing pass and the POST, each
// later one after a PATCH.
func (r *FilesResult) uploadTimes(start, end time.Time, marks []progressMark) {
	if len(marks) == 0 {
		return
	}
	first := marks[0].at
	r.HashSecs = first.Sub(start).Seconds()
	r.HashMBps = mbps(r.Size, r.HashSecs)
	r.UploadSecs = end.Sub(first).Seconds()
	r.UploadMBps = mbps(r.Size, r.UploadSecs)
	if len(marks) < 2 {
		return
	}
	chunks := NewHistogram()
	for i := 1; i < len(marks)-1; i++ {
		chunks.Record(marks[i].at.Sub(marks[i-1].at))
	}
	r.Chunk = chunks.Summary()
	last, prev := marks[len(marks)-1], marks[len(marks)-2]
	r.LastPatchSecs = last.at.Sub(prev.at).Seconds()
	if len(marks) > 2 {
		r.TransferSecs = prev.at.Sub(first).Seconds()
		r.TransferMBps = mbps(prev.off-marks[0].off, r.TransferSecs)
		typical := r.Chunk.P50.Duration().Seconds() * float64(last.off-prev.off) / float64(client.UploadChunk)
		r.FinishSecs = max(0, r.LastPatchSecs-typical)
	}
}

// rangeReads makes the run's random range reads, one at a time.
func (r *FilesResult) rangeReads(ctx context.Context, cfg FilesConfig, token string, content *Content) {
	// The middle half of the file, or all of it when that is too small.
	lo, hi := cfg.Size/4, cfg.Size*3/4-cfg.RangeSize
	if hi < lo {
		lo, hi = 0, cfg.Size-cfg.RangeSize
	}
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x72616e676573)) // the same ranges for the same seed
	url := cfg.Server + "/v1/files/" + r.FileID
	lat, first := NewHistogram(), NewHistogram()
	got := make([]byte, cfg.RangeSize)
	want := make([]byte, cfg.RangeSize)
	for i := 0; i < cfg.Ranges && ctx.Err() == nil; i++ {
		from := lo + rng.Int64N(hi-lo+1)
		to := from + cfg.RangeSize - 1
		t0 := time.Now()
		ttfb, err := getRange(ctx, url, token, from, to, cfg.Size, got, t0)
		if err == nil {
			lat.Record(time.Since(t0))
			first.Record(ttfb)
			content.ReadAt(want, from)
			if !bytes.Equal(got, want) {
				err = fmt.Errorf("bytes %d-%d differ from the uploaded content", from, to)
			}
		}
		if err != nil {
			r.RangesBad++
			r.note("range", err)
			continue
		}
		r.RangesOK++
	}
	r.RangeLatency, r.RangeFirst = lat.Summary(), first.Summary()
}

// getRange fetches bytes from-to of a file into buf (exactly that long)
// and returns the time from start to the answer's headers.
func getRange(ctx context.Context, url, token string, from, to, size int64, buf []byte, start time.Time) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	ttfb := time.Since(start)
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, herald.Errorf(herald.Internal, "range %d-%d: %s, want 206 Partial Content", from, to, resp.Status)
	}
	if cr, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", from, to, size); cr != want {
		return 0, fmt.Errorf("range %d-%d: Content-Range %q, want %q", from, to, cr, want)
	}
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		return 0, fmt.Errorf("range %d-%d: %w", from, to, err)
	}
	if n, _ := resp.Body.Read(make([]byte, 1)); n > 0 {
		return 0, fmt.Errorf("range %d-%d: the answer is longer than the range", from, to)
	}
	return ttfb, nil
}

// note counts an error by phase and kind and keeps the first message of
// each.
func (r *FilesResult) note(phase string, err error) {
	k := phase + " " + errorKind(err)
	r.Errors[k]++
	if _, ok := r.ErrorSamples[k]; !ok {
		r.ErrorSamples[k] = err.Error()
	}
}

func mbps(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(n) / 1e6 / secs
}

// Write prints the files result as a table.
func (r FilesResult) Write(w io.Writer) error {
	phase := func(p PhaseServer) string {
		s := fmt.Sprintf("RSS %.0f MiB before, %.0f MiB peak (%d samples), %.0f MiB after; Go heap peak %.0f MiB; CPU %.1f s (%.2f cores",
			p.RSSBeforeMiB, p.RSSPeakMiB, p.Samples, p.RSSAfterMiB, p.HeapPeakMiB, p.CPUSeconds, p.CPUCores)
		if p.CPUPerGiB > 0 {
			s += fmt.Sprintf(", %.1f s per GiB", p.CPUPerGiB)
		}
		return s + fmt.Sprintf("); generator %.2f cores", p.GeneratorCPU)
	}
	rows := []Row{
		{"file", fmt.Sprintf("%s, %s (%d bytes), seed %d", r.FileID, humanSize(r.Size), r.Size, r.Seed)},
		{"client SHA-256 pass", fmt.Sprintf("%.2f s (%.0f MB/s)", r.HashSecs, r.HashMBps)},
		{"upload (without the hash pass)", fmt.Sprintf("%.2f s (%.0f MB/s)", r.UploadSecs, r.UploadMBps)},
		{"  PATCHes before the last", fmt.Sprintf("%.2f s (%.0f MB/s)", r.TransferSecs, r.TransferMBps)},
		latencyRow(fmt.Sprintf("  one %s PATCH", humanSize(r.ChunkBytes)), r.Chunk),
		{"  last PATCH (server finishes the file)", fmt.Sprintf("%.2f s, of which about %.2f s finishing", r.LastPatchSecs, r.FinishSecs)},
		{"  server during the upload", phase(r.UploadServer)},
		{"download (whole, SHA-256 checked)", fmt.Sprintf("%.2f s (%.0f MB/s), verified %v", r.DownloadSecs, r.DownloadMBps, r.DownloadVerified)},
		{"  server during the download", phase(r.DownloadServer)},
	}
	if r.Ranges > 0 {
		rows = append(rows,
			Row{"range reads", fmt.Sprintf("%d of %s: %d correct, %d wrong", r.Ranges, humanSize(r.RangeSize), r.RangesOK, r.RangesBad)},
			latencyRow("  request -> last byte", r.RangeLatency),
			latencyRow("  request -> headers", r.RangeFirst),
			Row{"  server during the range reads", phase(r.RangeServer)},
		)
	}
	rows = append(rows, Row{"errors", kinds(r.Errors)})
	for _, k := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
		rows = append(rows, Row{"first " + k, r.ErrorSamples[k]})
	}
	return WriteTable(w, fmt.Sprintf("files: one %s file up, down, and %d range reads", humanSize(r.Size), r.Ranges), rows)
}

// sampler polls the server's /metrics in the background and keeps the
// peaks of its resident memory and Go heap since the current phase began.
type sampler struct {
	mu       sync.Mutex
	peakRSS  float64
	peakHeap float64
	n        int
	cancel   context.CancelFunc
	done     chan struct{}
	server   string
}

func startSampler(ctx context.Context, server string, every time.Duration) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{}), server: server}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if smp, err := SampleServer(ctx, server); err == nil {
				s.record(smp)
			}
		}
	}()
	return s
}

func (s *sampler) stop() {
	s.cancel()
	<-s.done
}

func (s *sampler) record(smp ServerSample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peakRSS = max(s.peakRSS, smp.RSS)
	s.peakHeap = max(s.peakHeap, smp.HeapInuse)
	s.n++
}

// phaseStart is the state of the server and of this process when a phase
// began.
type phaseStart struct {
	at  ServerSample
	cpu time.Duration
}

// begin samples the server and starts a phase's peaks afresh.
func (s *sampler) begin(ctx context.Context) (phaseStart, error) {
	smp, err := SampleServer(ctx, s.server)
	if err != nil {
		return phaseStart{}, err
	}
	s.mu.Lock()
	s.peakRSS, s.peakHeap, s.n = 0, 0, 0
	s.mu.Unlock()
	s.record(smp)
	return phaseStart{at: smp, cpu: ownCPU()}, nil
}

// end samples the server again and summarises the phase; bytes, if not
// zero, is what the phase moved (for CPU seconds per GiB).
func (s *sampler) end(ctx context.Context, p phaseStart, bytes int64) PhaseServer {
	cpu := ownCPU() - p.cpu
	after, err := SampleServer(context.WithoutCancel(ctx), s.server)
	if err != nil {
		after = ServerSample{At: time.Now()}
	} else {
		s.record(after)
	}
	s.mu.Lock()
	out := PhaseServer{
		RSSBeforeMiB: p.at.RSS / (1 << 20), RSSPeakMiB: s.peakRSS / (1 << 20), RSSAfterMiB: after.RSS / (1 << 20),
		HeapPeakMiB: s.peakHeap / (1 << 20), Samples: s.n,
	}
	s.mu.Unlock()
	if err == nil {
		out.CPUSeconds = after.CPU - p.at.CPU
	}
	if wall := after.At.Sub(p.at.At).Seconds(); wall > 0 {
		out.CPUCores = out.CPUSeconds / wall
		out.GeneratorCPU = cpu.Seconds() / wall
	}
	if bytes > 0 {
		out.CPUPerGiB = out.CPUSeconds / (float64(bytes) / (1 << 30))
	}
	return out
}

// contentBlock is the unit of the generated content: block i is the
// stream of a PCG seeded by the run's seed and i, so any byte is cheap to
// reach. (PCG rather than ChaCha8: twice as fast here, and the content
// needs to look random to a compressor, not to an adversary.)
const contentBlock = 64 << 10

// Content is a deterministic pseudo-random file that is never held in
// memory: each byte is a function of the seed and its offset. It is an
// io.ReadSeeker (what client.UploadFile takes) and an io.ReaderAt (for
// checking ranges). Read and Seek share one position and must not be
// used concurrently; ReadAt may be.
type Content struct {
	seed uint64
	size int64
	off  int64
	blk  int64 // the block in buf, -1 for none
	buf  []byte
	gen  mrand.PCG
}

// NewContent returns the content of size bytes for seed.
func NewContent(seed uint64, size int64) *Content {
	return &Content{seed: seed, size: size, blk: -1}
}

// Size returns the content's length.
func (c *Content) Size() int64 { return c.size }

// fillBlock writes block i of the content for seed into dst, whose length
// is contentBlock.
func fillBlock(gen *mrand.PCG, dst []byte, seed uint64, i int64) {
	gen.Seed(seed, uint64(i)*0x9e3779b97f4a7c15^0x6865726164)
	for j := 0; j+8 <= len(dst); j += 8 {
		binary.LittleEndian.PutUint64(dst[j:], gen.Uint64())
	}
}

// Read implements io.Reader.
func (c *Content) Read(p []byte) (int, error) {
	if c.off >= c.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.size-c.off)]
	n := 0
	for n < len(p) {
		i := c.off / contentBlock
		if i != c.blk {
			if c.buf == nil {
				c.buf = make([]byte, contentBlock)
			}
			fillBlock(&c.gen, c.buf, c.seed, i)
			c.blk = i
		}
		k := copy(p[n:], c.buf[c.off-i*contentBlock:])
		n += k
		c.off += int64(k)
	}
	return n, nil
}

// Seek implements io.Seeker.
func (c *Content) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += c.off
	case io.SeekEnd:
		offset += c.size
	default:
		return 0, fmt.Errorf("bench: Content.Seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("bench: Content.Seek: negative position %d", offset)
	}
	c.off = offset
	return offset, nil
}

// ReadAt implements io.ReaderAt.
func (c *Content) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bench: Content.ReadAt: negative offset %d", off)
	}
	if off >= c.size {
		return 0, io.EOF
	}
	var err error
	if int64(len(p)) > c.size-off {
		p, err = p[:c.size-off], io.EOF
	}
	var (
		gen     mrand.PCG
		scratch []byte
	)
	for n := 0; n < len(p); {
		pos := off + int64(n)
		i, in := pos/contentBlock, int(pos%contentBlock)
		if in == 0 && len(p)-n >= contentBlock {
			fillBlock(&gen, p[n:n+contentBlock], c.seed, i)
			n += contentBlock
			continue
		}
		if scratch == nil {
			scratch = make([]byte, contentBlock)
		}
		fillBlock(&gen, scratch, c.seed, i)
		n += copy(p[n:], scratch[in:])
	}
	return len(p), err
}

// ByteSize is a flag.Value for a byte count written like 1GiB, 100MiB,
// 64KiB or 1048576.
type ByteSize int64

// ParseByteSize reads a positive byte count with an optional binary unit
// (B, KiB, MiB, GiB, TiB).
func ParseByteSize(v string) (int64, error) { return herald.ParseSize(v) }

// Set implements flag.Value.
func (b *ByteSize) Set(v string) error {
	n, err := ParseByteSize(v)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// String implements flag.Value.
func (b *ByteSize) String() string {
	if b == nil {
		return "0"
	}
	return humanSize(int64(*b))
}

// humanSize writes n in the largest binary unit that divides it, else
// with one decimal: 1GiB, 100MiB, 1.5GiB, 12345B.
func humanSize(n int64) string {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	for _, u := range units {
		if n >= u.mult {
			return fmt.Sprintf("%.1f%s", float64(n)/float64(u.mult), u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}
