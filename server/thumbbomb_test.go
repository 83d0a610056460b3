package server_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldim/herald/client"
	pb "github.com/heraldim/herald/proto/herald/v1"
)

// bombPNG returns a PNG of w×h pixels, 16-bit RGB, every pixel black: a
// few hundred KB that a naive decoder turns into w·h·8 bytes. The zlib
// stream is built from copies of one compressed run of zeros (each ended
// by a sync flush, so copies can follow one another), which keeps the
// test from compressing 300 MB itself.
func bombPNG(w, h int) []byte {
	total := int64(1+w*6) * int64(h) // a filter byte and 6 bytes a pixel per row
	zeros := func(n int64) []byte {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestCompression)
		fw.Write(make([]byte, n))
		fw.Flush()
		return b.Bytes()
	}
	const run = 1 << 20
	whole := zeros(run)
	z := []byte{0x78, 0x01}
	for left := total; left > 0; left -= run {
		if left >= run {
			z = append(z, whole...)
		} else {
			z = append(z, zeros(left)...)
		}
	}
	var end bytes.Buffer
	fw, _ := flate.NewWriter(&end, flate.BestCompression)
	fw.Close() // the final, empty block
	z = append(z, end.Bytes()...)
	// Adler-32 of zeros: a stays 1, b counts the bytes.
	z = binary.BigEndian.AppendUint32(z, uint32(total%65521)<<16|1)

	chunk := func(out []byte, typ string, data []byte) []byte {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, 16, 2, 0, 0, 0) // 16-bit, truecolour, deflate, no filter, not interlaced
	out := []byte("\x89PNG\r\n\x1a\n")
	out = chunk(out, "IHDR", ihdr)
	out = chunk(out, "IDAT", z)
	return chunk(out, "IEND", nil)
}

// heapPeak samples the Go heap until stop is called and returns the
// highest value seen above the value at the start. Sampling can miss a
// short peak, but not a decoded image that lives for the seconds its
// decoding and shrinking take.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// Issue 22, item 2: a 7071×7071 16-bit PNG of a few hundred KB made the
// server decode 400 MB for its thumbnail; four at once took it past 3 GB.
// The server must read the header, refuse to decode it, and still keep and
// deliver the file (without a thumbnail).
func TestFileThumbnailBombIsNotDecoded(t *testing.T) {
	bomb := bombPNG(7071, 7071)
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes; it should be small", len(bomb))
	}
	n := startNode(t, "")
	alice, bobby := signup(t, n, "alice"), signup(t, n, "bobby")

	stop := heapPeak()
	files := make([]*pb.File, 4)
	var wg sync.WaitGroup
	for i := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Four different files (the same bytes would be kept once).
			b := append(bytes.Clone(bomb), byte(i))
			f, err := alice.UploadFile(ctxT(t), bytes.NewReader(b), int64(len(b)), client.UploadOptions{Name: "bomb.png"})
			if err != nil {
				t.Errorf("upload %d: %v", i, err)
			}
			files[i] = f
		}()
	}
	wg.Wait()
	grew := stop()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("peak heap growth while four bombs were uploaded: %d MiB", grew>>20)
	if grew > 128<<20 {
		t.Fatalf("the heap grew by %d MiB while four %d KB images were uploaded: they were decoded", grew>>20, len(bomb)>>10)
	}

	f := files[0]
	if f.Kind != "photo" || f.Mime != "image/png" || f.Width != 7071 || f.Height != 7071 {
		t.Fatalf("the bomb was stored as %s %s %d×%d, want a 7071×7071 photo", f.Kind, f.Mime, f.Width, f.Height)
	}
	if _, err := alice.Send(ctxT(t), &pb.SendRequest{Peer: to(bobby.user.name), FileId: f.Id}); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, n, bobby.token, "/v1/files/"+f.Id)
	if resp.StatusCode != 200 || !bytes.Equal(body, append(bytes.Clone(bomb), 0)) {
		t.Fatalf("bobby downloads the image: status %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(t, n, bobby.token, "/v1/files/"+f.Id+"?thumb=1"); resp.StatusCode != 404 {
		t.Fatalf("the bomb has a thumbnail: status %d", resp.StatusCode)
	}
}
