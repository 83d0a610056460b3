package service

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withIHDR returns a PNG with its IHDR's bytes changed (the CRC is left
// wrong: only the header reader sees it).
func withIHDR(b []byte, at int, v ...byte) []byte {
	b = bytes.Clone(b)
	copy(b[16+at:], v)
	return b
}

// jpegWithMarkers puts extra segments before a JPEG's frame header and
// makes it progressive if asked, as cameras and editors do.
func jpegWithMarkers(t testing.TB, img image.Image, progressive bool) []byte {
	b := encodeJPEG(t, img)
	exif := append([]byte{0xff, 0xe1, 0x40, 0x02}, make([]byte, 0x4000)...) // 16 KiB APP1
	out := append([]byte{0xff, 0xd8}, exif...)
	out = append(out, 0x00, 0x17, 0xff, 0xff) // extraneous bytes and fill, which Go skips
	rest := b[2:]
	if progressive {
		rest = bytes.Replace(bytes.Clone(rest), []byte{0xff, 0xc0}, []byte{0xff, 0xc2}, 1)
	}
	return append(out, rest...)
}

func TestReadImageHeader(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(i * 7)
	}
	gray16 := image.NewGray16(image.Rect(0, 0, 300, 200))
	rgba64 := image.NewRGBA64(image.Rect(0, 0, 300, 200))
	rgba64.Set(1, 1, color.RGBA64{1, 2, 3, 0xffff}) // not opaque-gray, so encoded as 16-bit RGB
	paletted := image.NewPaletted(image.Rect(0, 0, 300, 200), palette.Plan9)
	pngRGB := encodePNG(t, rgba)
	const px = 300 * 200
	tests := []struct {
		name         string
		data         []byte
		format       string
		w, h         int
		decoderNeeds int64 // the estimate must not be below this (0: not an image)
	}{
		{"png 8-bit", pngRGB, "png", 300, 200, 4 * px},
		{"png 16-bit grey", encodePNG(t, gray16), "png", 300, 200, 8 * px},
		{"png 16-bit RGB", encodePNG(t, rgba64), "png", 300, 200, 8 * px},
		{"png paletted", encodePNG(t, paletted), "png", 300, 200, px},
		{"png interlaced", withIHDR(pngRGB, 12, 1), "png", 300, 200, 8 * px},
		{"png 7071² 16-bit", withIHDR(encodePNG(t, rgba64), 0, 0, 0, 0x1b, 0x9f, 0, 0, 0x1b, 0x9f), "png", 7071, 7071, 8 * 7071 * 7071},
		{"png bad depth", withIHDR(pngRGB, 8, 12), "", 0, 0, 0},
		{"png zero width", withIHDR(pngRGB, 0, 0, 0, 0, 0), "", 0, 0, 0},
		{"jpeg", encodeJPEG(t, rgba), "jpeg", 300, 200, 3 * px / 2},
		{"jpeg after EXIF", jpegWithMarkers(t, rgba, false), "jpeg", 300, 200, 3 * px / 2},
		{"jpeg progressive", jpegWithMarkers(t, rgba, true), "jpeg", 300, 200, 3*px/2 + 6*px}, // 4:2:0: planes and coefficients
		{"jpeg grey", encodeJPEG(t, image.NewGray(image.Rect(0, 0, 300, 200))), "jpeg", 300, 200, px},
		{"jpeg without frame", []byte{0xff, 0xd8, 0xff, 0xd9}, "", 0, 0, 0},
		{"gif", encodeGIF(t, paletted), "gif", 300, 200, px},
		{"text", []byte("hello, this is not an image"), "", 0, 0, 0},
		{"empty", nil, "", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readImageHeader(bytes.NewReader(tt.data))
			if tt.format == "" {
				if err == nil {
					t.Fatalf("got %+v, want no header", h)
				}
				return
			}
			if err != nil || h.Format != tt.format || h.Width != tt.w || h.Height != tt.h {
				t.Fatalf("got %+v, %v; want %s %d×%d", h, err, tt.format, tt.w, tt.h)
			}
			if h.DecodeBytes < tt.decoderNeeds {
				t.Fatalf("estimate %d bytes, below the %d the decoder may allocate", h.DecodeBytes, tt.decoderNeeds)
			}
		})
	}
}

// The estimate from the header bounds what the decoder really allocates.
func TestDecodeStaysInEstimate(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for i := range rgba.Pix {
		rgba.Pix[i] = byte(i * 13)
	}
	rgba64 := image.NewRGBA64(rgba.Bounds())
	for i := range rgba64.Pix {
		rgba64.Pix[i] = byte(i * 5)
	}
	pal := image.NewPaletted(rgba.Bounds(), palette.Plan9)
	for name, data := range map[string][]byte{
		"png": encodePNG(t, rgba), "png 16-bit": encodePNG(t, rgba64),
		"jpeg": encodeJPEG(t, rgba), "gif": encodeGIF(t, pal),
		"png interlaced 16-bit": interlacedPNG(t, 640, 480, 16, 2), "png interlaced grey": interlacedPNG(t, 640, 480, 8, 0),
	} {
		t.Run(name, func(t *testing.T) {
			h, err := readImageHeader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			grew := allocated(func() {
				if _, err := decodeImage(h, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%d×%d: estimate %d, allocated %d", h.Width, h.Height, h.DecodeBytes, grew)
			if grew > uint64(h.DecodeBytes) {
				t.Fatalf("decoding allocated %d bytes; the header's estimate was %d", grew, h.DecodeBytes)
			}
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestThumbnailLimits(t *testing.T) {
	open := func(b []byte) func(context.Context) (io.ReadCloser, error) {
		return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	ctx := context.Background()
	img := image.NewRGBA(image.Rect(0, 0, 1000, 500))
	h, jpg, err := thumbnail(ctx, open(encodePNG(t, img)))
	if err != nil || h.Width != 1000 || len(jpg) == 0 {
		t.Fatalf("a 1000×500 PNG: %+v, %d bytes, %v", h, len(jpg), err)
	}
	if c, err := jpeg.DecodeConfig(bytes.NewReader(jpg)); err != nil || c.Width != 320 || c.Height != 160 {
		t.Fatalf("thumbnail %+v, %v", c, err)
	}
	// 4800×4800 (23 MP) at 8 bits is within the limits, not at 16.
	big := withIHDR(encodePNG(t, img), 0, 0, 0, 0x12, 0xc0, 0, 0, 0x12, 0xc0)
	if h, _ := readImageHeader(bytes.NewReader(big)); !h.decodable() {
		t.Fatalf("a 23 MP 8-bit PNG is refused: %+v", h)
	}
	sixteen := withIHDR(big, 8, 16)
	h, jpg, err = thumbnail(ctx, open(sixteen))
	if err == nil || jpg != nil || h.Width != 4800 {
		t.Fatalf("a 4800×4800 16-bit PNG: %+v, %d bytes, %v; want its header and no thumbnail", h, len(jpg), err)
	}
}

// At most thumbDecoders images are decoded at once; others wait their
// turn, and one that cannot even queue gives up at once.
func TestThumbnailDecodersAreBounded(t *testing.T) {
	data := encodePNG(t, image.NewRGBA(image.Rect(0, 0, 400, 400)))
	var decoding, most atomic.Int32
	unblock := make(chan struct{})
	open := func() func(context.Context) (io.ReadCloser, error) {
		calls := 0
		return func(context.Context) (io.ReadCloser, error) {
			calls++
			if calls == 2 { // the decode, after the header
				n := decoding.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-unblock
				decoding.Add(-1)
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}
	}
	old := thumbWait
	thumbWait = time.Hour // the waiters below must wait, not give up
	defer func() { thumbWait = old }()

	const n = thumbDecoders + 4
	var wg sync.WaitGroup
	made := atomic.Int32{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, jpg, err := thumbnail(context.Background(), open()); err == nil && jpg != nil {
				made.Add(1)
			}
		}()
	}
	for decoding.Load() < thumbDecoders || thumbWaiting.Load() < n-thumbDecoders {
		runtime.Gosched()
	}
	// Every slot and the waiting room are taken: one more gives up
	// without waiting (thumbWait is an hour).
	thumbWaiting.Add(thumbWaiters - (n - thumbDecoders))
	if _, ok := thumbTurn(context.Background()); ok {
		t.Fatal("got a decoder while all were busy")
	}
	thumbWaiting.Add(-(thumbWaiters - (n - thumbDecoders)))
	close(unblock)
	wg.Wait()
	if most.Load() != thumbDecoders || made.Load() != n {
		t.Fatalf("%d decoded at once (want %d), %d of %d thumbnails made", most.Load(), thumbDecoders, made.Load(), n)
	}
}

// A header that claims more than a decoder may allocate is refused before
// any decoding.
func TestHeaderEstimateOverflow(t *testing.T) {
	b := make([]byte, 33)
	copy(b, "\x89PNG\r\n\x1a\n")
	binary.BigEndian.PutUint32(b[8:], 13)
	copy(b[12:], "IHDR")
	binary.BigEndian.PutUint32(b[16:], 1<<20)
	binary.BigEndian.PutUint32(b[20:], 1<<20)
	b[24], b[25] = 16, 6
	h, err := readImageHeader(bytes.NewReader(b))
	if err != nil || h.decodable() || h.DecodeBytes <= 0 {
		t.Fatalf("%+v, %v", h, err)
	}
}

// A JPEG whose scan is repeated makes the decoder do the whole image's
// work again for each copy; past maxJPEGScans it is refused.
func TestJPEGScansAreBounded(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 3)
	}
	b := encodeJPEG(t, img)
	sos := bytes.Index(b, []byte{0xff, 0xda})
	scan := b[sos : len(b)-2] // up to the end-of-image marker
	build := func(scans int) []byte {
		out := bytes.Clone(b[:sos])
		for range scans {
			out = append(out, scan...)
		}
		return append(out, 0xff, 0xd9)
	}
	h, err := readImageHeader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeImage(h, bytes.NewReader(build(maxJPEGScans))); err != nil {
		t.Fatalf("%d scans: %v", maxJPEGScans, err)
	}
	if _, err := decodeImage(h, bytes.NewReader(build(maxJPEGScans+1))); err == nil {
		t.Fatalf("%d scans were decoded", maxJPEGScans+1)
	}
}

// Decoding stops reading once its time is up.
func TestDecodeTimeIsBounded(t *testing.T) {
	data := encodePNG(t, image.NewRGBA(image.Rect(0, 0, 64, 48)))
	h, err := readImageHeader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	old := maxDecodeTime
	maxDecodeTime = 0
	defer func() { maxDecodeTime = old }()
	if _, err := decodeImage(h, bytes.NewReader(data)); err == nil {
		t.Fatal("decoded after the time was up")
	}
}

// The estimate holds for the kinds of image Go's encoders do not write
// (progressive and CMYK JPEG, interlaced GIF), from the Go distribution's
// own test images.
func TestDecodeStaysInEstimateGoTestdata(t *testing.T) {
	dir := filepath.Join(runtime.GOROOT(), "src", "image", "testdata")
	names := []string{
		"video-001.progressive.jpeg", "video-001.q50.420.progressive.jpeg", "video-001.q50.411.progressive.jpeg",
		"video-001.q50.444.progressive.jpeg", "video-001.cmyk.jpeg", "video-001.q50.410.jpeg", "video-001.interlaced.gif",
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if errors.Is(err, fs.ErrNotExist) {
				t.Skipf("this Go installation has no %s", name)
			}
			if err != nil {
				t.Fatal(err)
			}
			h, err := readImageHeader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			grew := allocated(func() {
				if _, err := decodeImage(h, bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%d×%d: estimate %d, allocated %d", h.Width, h.Height, h.DecodeBytes, grew)
			if grew > uint64(h.DecodeBytes) {
				t.Fatalf("decoding allocated %d bytes; the header's estimate was %d", grew, h.DecodeBytes)
			}
		})
	}
}

// Shrinking allocates the thumbnail, not a color per source pixel.
func TestShrinkAllocatesTheThumbnailOnly(t *testing.T) {
	for _, img := range []image.Image{
		image.NewRGBA(image.Rect(0, 0, 1000, 800)), image.NewRGBA64(image.Rect(0, 0, 1000, 800)),
		image.NewYCbCr(image.Rect(0, 0, 1000, 800), image.YCbCrSubsampleRatio420),
		image.NewPaletted(image.Rect(0, 0, 1000, 800), palette.Plan9),
	} {
		grew := allocated(func() { shrink(img, 320) })
		if want := uint64(320*256*4) + 64<<10; grew > want {
			t.Fatalf("shrinking a 1000×800 %T allocated %d bytes, want about the 320×256 thumbnail's %d", img, grew, 320*256*4)
		}
	}
}

// interlacedPNG writes a black Adam7-interlaced PNG (Go's encoder writes
// none): each of the seven passes is a small image of its own rows.
func interlacedPNG(t testing.TB, w, h int, depth, colour byte) []byte {
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colour]
	bpp := channels * int(depth) / 8
	var raw bytes.Buffer
	for _, p := range [7][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}} {
		pw, ph := (w-p[0]+p[2]-1)/p[2], (h-p[1]+p[3]-1)/p[3]
		if pw <= 0 || ph <= 0 {
			continue
		}
		raw.Write(make([]byte, ph*(1+pw*bpp)))
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(raw.Bytes())
	zw.Close()
	chunk := func(out []byte, typ string, data []byte) []byte {
		out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
		start := len(out)
		out = append(append(out, typ...), data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, depth, colour, 0, 0, 1)
	out := chunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	out = chunk(out, "IDAT", z.Bytes())
	out = chunk(out, "IEND", nil)
	if m, err := png.Decode(bytes.NewReader(out)); err != nil || m.Bounds().Dx() != w {
		t.Fatalf("the interlaced PNG does not decode: %v", err)
	}
	return out
}
