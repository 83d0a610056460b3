package bench_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"testing/iotest"

	"github.com/heraldim/herald/bench"
	"github.com/heraldim/herald/client"
)

// TestContent checks that the generated content is one function of the
// offset, whichever way it is read.
func TestContent(t *testing.T) {
	const size = 3*64<<10 + 12345 // three blocks and a short one
	whole := make([]byte, size)
	if n, err := bench.NewContent(7, size).ReadAt(whole, 0); n != size || err != nil {
		t.Fatalf("ReadAt(all) = %d, %v", n, err)
	}
	if bytes.Count(whole, []byte{0}) > size/100 {
		t.Error("the content is mostly zeros")
	}
	if bytes.Equal(whole[:64<<10], whole[64<<10:128<<10]) || bytes.Equal(whole[:100], whole[64<<10:64<<10+100]) {
		t.Error("the first two blocks are alike")
	}

	// The io tests (reads of every size, seeks, ReadAt everywhere) on a
	// short content: each ReadAt generates a whole block.
	if err := iotest.TestReader(bench.NewContent(7, 3000), whole[:3000]); err != nil {
		t.Error(err)
	}
	var got bytes.Buffer
	if _, err := io.CopyBuffer(&got, struct{ io.Reader }{bench.NewContent(7, size)}, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), whole) {
		t.Error("reading in 1000-byte pieces differs from ReadAt")
	}

	c := bench.NewContent(7, size)
	for _, off := range []int64{0, 1, 64<<10 - 1, 64 << 10, 100_000, size - 10} {
		if _, err := c.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 70_000)
		n, err := io.ReadFull(c, b)
		if want := min(int64(len(b)), size-off); int64(n) != want {
			t.Errorf("at %d: read %d bytes (%v), want %d", off, n, err, want)
		}
		if !bytes.Equal(b[:n], whole[off:off+int64(n)]) {
			t.Errorf("Seek(%d)+Read differs from ReadAt", off)
		}
		r := make([]byte, 5000)
		n, err = c.ReadAt(r, off)
		if int64(n) != min(5000, size-off) || (off+5000 > size) != (err == io.EOF) {
			t.Errorf("ReadAt(5000, %d) = %d, %v", off, n, err)
		}
		if !bytes.Equal(r[:n], whole[off:off+int64(n)]) {
			t.Errorf("ReadAt(%d) differs from the whole", off)
		}
	}

	// A longer file starts with the same bytes; another seed does not.
	longer := make([]byte, size)
	bench.NewContent(7, 10*size).ReadAt(longer, 0)
	if !bytes.Equal(longer, whole) {
		t.Error("the content depends on its size")
	}
	other := make([]byte, size)
	bench.NewContent(8, size).ReadAt(other, 0)
	if bytes.Equal(other, whole) {
		t.Error("seeds 7 and 8 give the same content")
	}
}

func TestParseByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1GiB", 1 << 30}, {"100MiB", 100 << 20}, {"64KiB", 64 << 10}, {"1048576", 1 << 20}, {"5B", 5}, {" 2 TiB", 2 << 40},
		{"0", 0}, {"-1MiB", 0}, {"1GB", 0}, {"1.5GiB", 0}, {"", 0}, {"9999999TiB", 0},
	} {
		got, err := bench.ParseByteSize(c.in)
		if (err != nil) != (c.want == 0) || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// TestRunFiles runs the scenario small against a real server: three
// PATCHes (two timed as chunks, the last with the finish), a verified download, range reads checked byte for byte.
func TestRunFiles(t *testing.T) {
	size := int64(2*client.UploadChunk + 12345)
	r, err := bench.RunFiles(ctxFor(t), bench.FilesConfig{Server: startServer(t), Size: size, Ranges: 20, RangeSize: 100_000, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	if r.FileID == "" || r.Size != size || r.Seed != 42 {
		t.Errorf("file %q, size %d, seed %d", r.FileID, r.Size, r.Seed)
	}
	if !r.DownloadVerified || r.RangesOK != 20 || r.RangesBad != 0 || len(r.Errors) != 0 {
		t.Errorf("download verified %v, ranges %d ok %d bad, errors %v", r.DownloadVerified, r.RangesOK, r.RangesBad, r.Errors)
	}
	if r.Chunk.Count != 2 || r.RangeLatency.Count != 20 || r.RangeFirst.Count != 20 {
		t.Errorf("chunk samples %d, range samples %d/%d", r.Chunk.Count, r.RangeLatency.Count, r.RangeFirst.Count)
	}
	if r.HashSecs <= 0 || r.UploadSecs <= 0 || r.TransferSecs <= 0 || r.LastPatchSecs <= 0 || r.DownloadSecs <= 0 {
		t.Errorf("a phase has no time: %+v", r)
	}
	if r.UploadServer.RSSPeakMiB <= 0 || r.UploadServer.RSSPeakMiB < r.UploadServer.RSSBeforeMiB || r.DownloadServer.RSSAfterMiB <= 0 {
		t.Errorf("server memory not read: upload %+v, download %+v", r.UploadServer, r.DownloadServer)
	}

	// The server holds the generator's bytes: their SHA-256 is the file's.
	h := sha256.New()
	io.Copy(h, bench.NewContent(42, size))
	if got := hex.EncodeToString(h.Sum(nil)); r.SHA256 != got {
		t.Errorf("the file's SHA-256 is %s, the content's %s", r.SHA256, got)
	}
	var tbl bytes.Buffer
	if err := r.Write(&tbl); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"upload (without the hash pass)", "verified true", "20 correct, 0 wrong"} {
		if !bytes.Contains(tbl.Bytes(), []byte(s)) {
			t.Errorf("the table lacks %q:\n%s", s, tbl.String())
		}
	}
}

// BenchmarkContentRead is the generator's speed, to compare with the
// upload's: it must not be what limits a run.
func BenchmarkContentRead(b *testing.B) {
	c := bench.NewContent(1, 1<<62)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		c.Read(buf)
	}
}
