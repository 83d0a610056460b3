package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"sync/atomic"
	"time"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/crypto"
)

// Limits on thumbnailing. A small file can declare a huge canvas (a
// decompression bomb), so the server reads the header, estimates what
// the decoder would allocate, and decodes only what fits the budget, a
// few images at a time. A photo over the limits is kept, without a
// thumbnail.
const (
	// maxThumbPixels bounds the canvas: the shrinking pass visits each
	// pixel.
	maxThumbPixels = 24_000_000
	// maxDecodeBytes bounds what one decode may allocate, as estimated
	// from the header: a 24 MP 8-bit PNG (96 MB) or baseline 4:2:0 JPEG
	// (132 MB) fits, a 16-bit PNG up to 16 MP, a progressive JPEG up to
	// about 11 MP.
	maxDecodeBytes = 128 << 20
	// maxHeaderBytes bounds how far into a file the header is looked
	// for (JPEG puts EXIF and colour profiles before its dimensions).
	maxHeaderBytes = 1 << 20
	// maxThumbInput bounds the bytes a decoder may read.
	maxThumbInput = 128 << 20
	// thumbDecoders images are decoded at once, server-wide; at most
	// thumbWaiters more wait for a turn, each at most thumbWait.
	thumbDecoders = 2
	thumbWaiters  = 8
)

// thumbWait is how long a photo waits for a decoder before it is kept
// without a thumbnail; a variable for tests.
var thumbWait = 5 * time.Second

// Work per byte is bounded for PNG and GIF, not for JPEG: a progressive
// scan of a few bytes (one long run of empty blocks) makes the decoder
// visit every block again. So a JPEG may have at most maxJPEGScans scans
// (encoders write about ten), and any decoding stops reading when
// maxDecodeTime is up, which ends it within a scan.
const maxJPEGScans = 100

var maxDecodeTime = 10 * time.Second

var errDecodeLimit = errors.New("the image takes too much work to decode")

// boundedReader stops a decoder: after a deadline, and in JPEG after
// too many start-of-scan markers (0xFF 0xDA, which entropy-coded data
// cannot contain: an 0xFF there is followed by 0x00 or a restart marker).
type boundedReader struct {
	r        io.Reader
	deadline time.Time
	jpeg     bool
	scans    int
	ff       bool // the last byte read was 0xFF
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if !time.Now().Before(b.deadline) {
		return 0, errDecodeLimit
	}
	n, err := b.r.Read(p)
	if b.jpeg {
		for _, c := range p[:n] {
			if b.ff && c == 0xda {
				if b.scans++; b.scans > maxJPEGScans {
					return 0, errDecodeLimit
				}
			}
			b.ff = c == 0xff
		}
	}
	return n, err
}

// Thumbnail decoding is bounded per process, not per Service: it is the
// process's memory that a bomb would take.
var (
	thumbSlots   = make(chan struct{}, thumbDecoders)
	thumbWaiting atomic.Int32
)

// thumbTurn waits for one of the decoding slots; a photo that cannot get
// one soon is not worth queueing behind others.
func thumbTurn(ctx context.Context) (release func(), ok bool) {
	select {
	case thumbSlots <- struct{}{}:
		return func() { <-thumbSlots }, true
	default:
	}
	if thumbWaiting.Add(1) > thumbWaiters {
		thumbWaiting.Add(-1)
		return nil, false
	}
	defer thumbWaiting.Add(-1)
	t := time.NewTimer(thumbWait)
	defer t.Stop()
	select {
	case thumbSlots <- struct{}{}:
		return func() { <-thumbSlots }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// imageHeader is what the server learns of an image before decoding it.
type imageHeader struct {
	Format        string // "png", "jpeg" or "gif"
	Width, Height int
	// DecodeBytes estimates, from above, what Go's decoder for the
	// format allocates for this image.
	DecodeBytes int64
}

var errNotImage = errors.New("not an image the server decodes")

// readImageHeader reads an image's dimensions and layout from at most
// maxHeaderBytes of r, without decoding any pixel.
func readImageHeader(r io.Reader) (imageHeader, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHeaderBytes), 4096)
	magic, err := br.Peek(8)
	if err != nil && len(magic) < 6 {
		return imageHeader{}, errNotImage
	}
	switch {
	case bytes.HasPrefix(magic, []byte("\x89PNG\r\n\x1a\n")):
		return pngHeader(br)
	case bytes.HasPrefix(magic, []byte("\xff\xd8")):
		return jpegHeader(br)
	case bytes.HasPrefix(magic, []byte("GIF87a")), bytes.HasPrefix(magic, []byte("GIF89a")):
		return gifHeader(br)
	}
	return imageHeader{}, errNotImage
}

// pngHeader reads IHDR, which the PNG decoder requires first. Go decodes
// 8-bit and smaller samples into at most 4 bytes a pixel (NRGBA, also
// for grey with transparency), paletted ones into 1, and 16-bit samples
// into 8 (RGBA64/NRGBA64). An interlaced image is decoded pass by pass
// beside the whole: twice the bytes.
func pngHeader(r io.Reader) (imageHeader, error) {
	var b [33]byte // signature, IHDR length and type, 13 bytes of IHDR, CRC
	if _, err := io.ReadFull(r, b[:]); err != nil || string(b[12:16]) != "IHDR" || binary.BigEndian.Uint32(b[8:12]) != 13 {
		return imageHeader{}, errNotImage
	}
	w, h := binary.BigEndian.Uint32(b[16:20]), binary.BigEndian.Uint32(b[20:24])
	depth, colour, interlace := b[24], b[25], b[28]
	var bpp int64
	switch {
	case colour == 3 && depth <= 8:
		bpp = 1
	case depth <= 8:
		bpp = 4
	case depth == 16:
		bpp = 8
	default:
		return imageHeader{}, errNotImage
	}
	if interlace != 0 {
		bpp *= 2
	}
	return sized("png", int64(w), int64(h), func(px int64) int64 { return px * bpp })
}

// gifHeader reads the logical screen. Go decodes only the first frame for
// a still image, into one byte a pixel, and refuses frames larger than
// the screen; later frames are never read.
func gifHeader(r io.Reader) (imageHeader, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return imageHeader{}, errNotImage
	}
	w, h := binary.LittleEndian.Uint16(b[6:8]), binary.LittleEndian.Uint16(b[8:10])
	return sized("gif", int64(w), int64(h), func(px int64) int64 { return px })
}

// jpegHeader walks the markers to the frame header (SOF) as Go's decoder
// does, skipping what it skips.
func jpegHeader(r *bufio.Reader) (imageHeader, error) {
	var b [2]byte
	if _, err := io.ReadFull(r, b[:]); err != nil || b != [2]byte{0xff, 0xd8} {
		return imageHeader{}, errNotImage
	}
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return imageHeader{}, errNotImage
		}
		for b[0] != 0xff { // extraneous bytes, which Go ignores
			c, err := r.ReadByte()
			if err != nil {
				return imageHeader{}, errNotImage
			}
			b[0], b[1] = b[1], c
		}
		marker := b[1]
		if marker == 0 {
			continue
		}
		for marker == 0xff {
			c, err := r.ReadByte()
			if err != nil {
				return imageHeader{}, errNotImage
			}
			marker = c
		}
		if marker == 0xd9 { // end of image, with no frame
			return imageHeader{}, errNotImage
		}
		if 0xd0 <= marker && marker <= 0xd7 { // restart markers have no length
			continue
		}
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return imageHeader{}, errNotImage
		}
		n := int(binary.BigEndian.Uint16(b[:])) - 2
		if n < 0 {
			return imageHeader{}, errNotImage
		}
		switch {
		case marker == 0xc0 || marker == 0xc1 || marker == 0xc2:
			return jpegFrame(r, n, marker == 0xc2)
		case marker == 0xc4, marker == 0xdb, marker == 0xdd, 0xe0 <= marker && marker <= 0xef, marker == 0xfe:
			// Tables, restart interval, application data, comments.
			if _, err := r.Discard(n); err != nil {
				return imageHeader{}, errNotImage
			}
		default: // a scan before the frame, or a marker Go does not decode
			return imageHeader{}, errNotImage
		}
	}
}

func jpegFrame(r io.Reader, n int, progressive bool) (imageHeader, error) {
	var f [6 + 3*4]byte
	if n != 6+3*1 && n != 6+3*3 && n != 6+3*4 {
		return imageHeader{}, errNotImage
	}
	if _, err := io.ReadFull(r, f[:n]); err != nil || f[0] != 8 || int(f[5])*3+6 != n {
		return imageHeader{}, errNotImage
	}
	h, w, comps := int64(binary.BigEndian.Uint16(f[1:3])), int64(binary.BigEndian.Uint16(f[3:5])), int(f[5])
	var hs, vs [4]int64 // sampling factors; Go accepts 1 to 4
	for i := range comps {
		hs[i], vs[i] = int64(f[7+3*i]>>4), int64(f[7+3*i]&15)
		if hs[i] < 1 || hs[i] > 4 || vs[i] < 1 || vs[i] > 4 {
			return imageHeader{}, errNotImage
		}
	}
	return sized("jpeg", w, h, func(px int64) int64 {
		// As Go sizes them: planes padded to whole blocks of the first
		// component's sampling, a byte a pixel of each (the chroma
		// planes of a subsampled image are smaller), and for a
		// progressive image 64 int32 coefficients per block.
		mxx, myy := (w+8*hs[0]-1)/(8*hs[0]), (h+8*vs[0]-1)/(8*vs[0])
		var blocks int64
		for i := range comps {
			blocks += mxx * myy * hs[i] * vs[i]
		}
		total := blocks * 64
		if progressive {
			total += blocks * 64 * 4
		}
		if comps > 1 {
			total += 4 * px // converted to RGBA or CMYK
		}
		return total
	})
}

// decoderState is what a decoder allocates whatever the image's size:
// tables, buffers, zlib's window.
const decoderState = 128 << 10

// sized checks an image's dimensions and fills in the estimate.
func sized(format string, w, h int64, bytes func(pixels int64) int64) (imageHeader, error) {
	if w <= 0 || h <= 0 || w > 1<<20 || h > 1<<20 {
		return imageHeader{}, errNotImage
	}
	return imageHeader{Format: format, Width: int(w), Height: int(h), DecodeBytes: decoderState + bytes(w*h)}, nil
}

// decodable says whether the image fits the thumbnail limits.
func (h imageHeader) decodable() bool {
	return int64(h.Width)*int64(h.Height) <= maxThumbPixels && h.DecodeBytes <= maxDecodeBytes
}

// decodeImage decodes one image whose header was read, with the decoder
// of that format only (never another registered one), reading at most
// maxThumbInput bytes.
func decodeImage(h imageHeader, r io.Reader) (image.Image, error) {
	r = &boundedReader{r: io.LimitReader(r, maxThumbInput), deadline: time.Now().Add(maxDecodeTime), jpeg: h.Format == "jpeg"}
	var img image.Image
	var err error
	switch h.Format {
	case "png":
		img, err = png.Decode(r)
	case "jpeg":
		img, err = jpeg.Decode(r)
	case "gif":
		img, err = gif.Decode(r)
	default:
		return nil, errNotImage
	}
	if err != nil {
		return nil, err
	}
	if b := img.Bounds(); b.Dx() > h.Width || b.Dy() > h.Height {
		return nil, errNotImage // not the image the header described
	}
	return img, nil
}

// thumbnail reads an image's header from open() and, if the image fits
// the limits and a decoder is free, decodes it (from a second open())
// and returns its thumbnail as a JPEG. The header is returned whenever it
// parses, thumbnail or not.
func thumbnail(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) (imageHeader, []byte, error) {
	src, err := open(ctx)
	if err != nil {
		return imageHeader{}, nil, err
	}
	h, err := readImageHeader(src)
	src.Close()
	if err != nil {
		return imageHeader{}, nil, err
	}
	if !h.decodable() {
		return h, nil, herald.Errorf(herald.TooLarge, "a %d×%d %s is too large to make a thumbnail of", h.Width, h.Height, h.Format)
	}
	release, ok := thumbTurn(ctx)
	if !ok {
		return h, nil, herald.Errorf(herald.Unavailable, "no decoder was free for a thumbnail")
	}
	defer release()
	if src, err = open(ctx); err != nil {
		return h, nil, err
	}
	defer src.Close()
	img, err := decodeImage(h, src)
	if err != nil {
		return h, nil, err
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, shrink(img, herald.ThumbSize), &jpeg.Options{Quality: 80}); err != nil {
		return h, nil, err
	}
	return h, out.Bytes(), nil
}

// photo records a photo's dimensions and stores its thumbnail, sealed
// under a key derived from the file's key so it dies with the file. A
// photo that does not decode, or is too large to, is still a file; it
// just has no thumbnail.
func (s *Service) photo(ctx context.Context, f *herald.File, up Upload) {
	h, jpg, err := thumbnail(ctx, up.Open)
	if h.Width > 0 && h.Width <= 1<<16 && h.Height <= 1<<16 {
		f.Width, f.Height = h.Width, h.Height
	}
	if err != nil {
		if h.Width > 0 {
			s.log.InfoContext(ctx, "no thumbnail", "file", f.ID, "err", err)
		}
		return
	}
	key, err := s.sealer.Open(crypto.FileBinding(f.ID), f.Key)
	if err != nil {
		return
	}
	sealed, err := crypto.SealWithFileKey(key, "thumb", jpg)
	if err != nil {
		return
	}
	if _, err := s.blobs.Put(ctx, thumbKey(f.ID), bytes.NewReader(sealed)); err != nil {
		s.log.WarnContext(ctx, "thumbnail not stored", "file", f.ID, "err", err)
		return
	}
	f.Thumb = true
}

// shrink scales img so its long side is at most max pixels, averaging the
// source pixels each target pixel covers (a box filter: sharp enough for
// a preview, and no dependency beyond the standard library).
func shrink(img image.Image, max int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= max && h <= max {
		return img
	}
	tw, th := max, h*max/w
	if h > w {
		tw, th = w*max/h, max
	}
	tw, th = maxInt(tw, 1), maxInt(th, 1)
	// Every decoded image has RGBA64At, which, unlike At, boxes no
	// color per pixel: 24 MP would otherwise make ~400 MB of garbage.
	at := func(x, y int) (r, g, b, a uint32) { return img.At(x, y).RGBA() }
	if m, ok := img.(image.RGBA64Image); ok {
		at = func(x, y int) (r, g, b, a uint32) {
			c := m.RGBA64At(x, y)
			return uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	for y := 0; y < th; y++ {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+(y+1)*h/th
		for x := 0; x < tw; x++ {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+(x+1)*w/tw
			var r, g, bl, a, n uint64
			for sy := y0; sy < maxInt(y1, y0+1); sy++ {
				for sx := x0; sx < maxInt(x1, x0+1); sx++ {
					cr, cg, cb, ca := at(sx, sy)
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			dst.SetRGBA64(x, y, color.RGBA64{uint16(r / n), uint16(g / n), uint16(bl / n), uint16(a / n)})
		}
	}
	return dst
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
