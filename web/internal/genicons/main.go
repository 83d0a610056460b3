// Command genicons draws the web app's PNG icons (static/icon-192.png,
// static/icon-512.png) from the shapes of static/icon.svg: the manifest
// needs raster icons for Chromium to offer "Install". Run it with
// `go run ./web/internal/genicons` after changing the icon.
package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"path/filepath"
)

// The SVG's 64×64 drawing: a rounded square and a paper plane.
var plane = [][2]float64{{14, 30}, {50, 15}, {42, 50}, {31, 39}, {24, 47}, {24, 36}, {43, 21}, {21, 34}}

const radius = 16

var blue = color.NRGBA{0x1f, 0x5f, 0xd6, 0xff}

func inRounded(x, y float64) bool {
	if x < 0 || y < 0 || x > 64 || y > 64 {
		return false
	}
	cx, cy := x, y
	switch {
	case x < radius:
		cx = radius
	case x > 64-radius:
		cx = 64 - radius
	}
	switch {
	case y < radius:
		cy = radius
	case y > 64-radius:
		cy = 64 - radius
	}
	dx, dy := x-cx, y-cy
	return dx*dx+dy*dy <= radius*radius
}

// inPlane is the even-odd rule, as the SVG fills the path.
func inPlane(x, y float64) bool {
	in := false
	for i, j := 0, len(plane)-1; i < len(plane); j, i = i, i+1 {
		a, b := plane[i], plane[j]
		if (a[1] > y) != (b[1] > y) && x < (b[0]-a[0])*(y-a[1])/(b[1]-a[1])+a[0] {
			in = !in
		}
	}
	return in
}

func draw(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	const ss = 4 // 4×4 samples a pixel, for smooth edges
	scale := 64 / float64(size)
	for py := range size {
		for px := range size {
			var bg, fg int
			for sy := range ss {
				for sx := range ss {
					x := (float64(px) + (float64(sx)+0.5)/ss) * scale
					y := (float64(py) + (float64(sy)+0.5)/ss) * scale
					if inRounded(x, y) {
						bg++
						if inPlane(x, y) {
							fg++
						}
					}
				}
			}
			if bg == 0 {
				continue
			}
			n := float64(ss * ss)
			f := float64(fg) / float64(bg)
			mix := func(c uint8) uint8 { return uint8(float64(c)*(1-f) + 255*f + 0.5) }
			img.SetNRGBA(px, py, color.NRGBA{mix(blue.R), mix(blue.G), mix(blue.B), uint8(float64(bg)/n*255 + 0.5)})
		}
	}
	return img
}

func main() {
	dir := filepath.Join("web", "static")
	if _, err := os.Stat(dir); err != nil {
		dir = "static" // run from web/
	}
	for _, size := range []int{192, 512} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("icon-%d.png", size)))
		if err != nil {
			log.Fatal(err)
		}
		if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(f, draw(size)); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
}
