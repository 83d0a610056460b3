package service

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/heraldim/herald"
)

// FuzzImageHeader feeds arbitrary bytes to the thumbnail path as an
// uploaded photo: the header reader agrees with Go's own decoders on the
// dimensions, and decoding an image the limits let through allocates no
// more than the header's estimate. (Fuzzing decodes only images of up to
// 4 MiB, to keep each run short; the estimate is the same.)
func FuzzImageHeader(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 31)
	}
	f.Add(encodePNG(f, img))
	f.Add(withIHDR(encodePNG(f, img), 12, 1))
	f.Add(encodeJPEG(f, img))
	f.Add(jpegWithMarkers(f, img, true))
	f.Add(encodeGIF(f, img))
	f.Add([]byte("GIF89a\xff\xff\xff\xff"))
	f.Add([]byte("\xff\xd8\xff\xc2\x00\x11\x08\x10\x00\x10\x00\x03\x01\x44\x00\x02\x11\x00\x03\x11\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readImageHeader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var cfg image.Config
		var cerr error
		switch h.Format {
		case "png":
			cfg, cerr = png.DecodeConfig(bytes.NewReader(data))
		case "jpeg":
			cfg, cerr = jpeg.DecodeConfig(bytes.NewReader(data))
		case "gif":
			cfg, cerr = gif.DecodeConfig(bytes.NewReader(data))
		default:
			t.Fatalf("format %q", h.Format)
		}
		if cerr == nil && (cfg.Width != h.Width || cfg.Height != h.Height) {
			t.Fatalf("header %d×%d, Go's decoder %d×%d", h.Width, h.Height, cfg.Width, cfg.Height)
		}
		if !h.decodable() || h.DecodeBytes > 4<<20 {
			return
		}
		var m image.Image
		grew := allocated(func() { m, err = decodeImage(h, bytes.NewReader(data)) })
		if grew > uint64(h.DecodeBytes) {
			t.Fatalf("decoding a %d×%d %s allocated %d bytes; its header's estimate was %d", h.Width, h.Height, h.Format, grew, h.DecodeBytes)
		}
		if err != nil {
			return
		}
		b := shrink(m, herald.ThumbSize).Bounds()
		if b.Dx() > herald.ThumbSize || b.Dy() > herald.ThumbSize || b.Empty() {
			t.Fatalf("thumbnail of %v is %v", m.Bounds(), b)
		}
	})
}

// FuzzSniff feeds arbitrary content to the type sniffer as FinishUpload
// does, through the 512-byte prefix: what comes after it never changes
// the type, text is never served as anything but plain text, and only
// images are photos.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("<!DOCTYPE html><script>alert(1)</script>"))
	f.Add([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"))
	f.Add([]byte("\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00"))
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"))
	f.Add([]byte("%PDF-1.7\n"))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>x</script></svg>"))
	f.Add(bytes.Repeat([]byte{0xff}, 600))
	f.Fuzz(func(t *testing.T, data []byte) {
		// FinishUpload hands the content over in pieces of any size.
		p := &prefix{max: 512}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+int(rest[0])%97)
			p.Write(rest[:n])
			rest = rest[n:]
		}
		if want := data[:min(len(data), 512)]; !bytes.Equal(p.b, want) {
			t.Fatalf("the prefix kept %d bytes, want the first %d", len(p.b), len(want))
		}
		mime, kind := sniff(p.b)
		switch kind {
		case herald.FilePhoto:
			if !strings.HasPrefix(mime, "image/") {
				t.Fatalf("a photo of type %s", mime)
			}
		case herald.FileVideo, herald.FileAudio, herald.FileVoice, herald.FileDocument:
		default:
			t.Fatalf("kind %q", kind)
		}
		if strings.HasPrefix(mime, "text/") && mime != "text/plain; charset=utf-8" || strings.Contains(mime, "html") || strings.Contains(mime, "xml") || strings.Contains(mime, "javascript") {
			t.Fatalf("content served as %s", mime)
		}
	})
}
