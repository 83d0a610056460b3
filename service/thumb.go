package service

import (
	"bytes"
	"context"
	"image"
	"image/color"
	_ "image/gif" // decoders for the photo formats thumbnails are made of
	"image/jpeg"
	_ "image/png"
	"io"

	"github.com/heraldim/herald"
	"github.com/heraldim/herald/crypto"
)

// maxThumbPixels bounds the images the server decodes for a thumbnail: a
// small file can declare a huge canvas (a decompression bomb).
const maxThumbPixels = 50_000_000

// photo records a photo's dimensions and stores its thumbnail, sealed
// under a key derived from the file's key so it dies with the file. A
// photo that does not decode is still a file; it just has no thumbnail.
func (s *Service) photo(ctx context.Context, f *herald.File, up Upload) {
	src, err := up.Open(ctx)
	if err != nil {
		return
	}
	defer src.Close()
	var head bytes.Buffer
	cfg, _, err := image.DecodeConfig(io.TeeReader(src, &head))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxThumbPixels {
		return
	}
	f.Width, f.Height = cfg.Width, cfg.Height
	img, _, err := image.Decode(io.MultiReader(&head, src))
	if err != nil {
		return
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, shrink(img, herald.ThumbSize), &jpeg.Options{Quality: 80}); err != nil {
		return
	}
	key, err := s.sealer.Open(crypto.FileBinding(f.ID), f.Key)
	if err != nil {
		return
	}
	sealed, err := crypto.SealWithFileKey(key, "thumb", out.Bytes())
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
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	for y := 0; y < th; y++ {
		y0, y1 := b.Min.Y+y*h/th, b.Min.Y+(y+1)*h/th
		for x := 0; x < tw; x++ {
			x0, x1 := b.Min.X+x*w/tw, b.Min.X+(x+1)*w/tw
			var r, g, bl, a, n uint64
			for sy := y0; sy < maxInt(y1, y0+1); sy++ {
				for sx := x0; sx < maxInt(x1, x0+1); sx++ {
					cr, cg, cb, ca := img.At(sx, sy).RGBA()
					r, g, bl, a, n = r+uint64(cr), g+uint64(cg), bl+uint64(cb), a+uint64(ca), n+1
				}
			}
			dst.Set(x, y, color.RGBA64{uint16(r / n), uint16(g / n), uint16(bl / n), uint16(a / n)})
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
