package tasks

import (
	"fmt"
	"sync"

	"github.com/peftlab/peftlab/pkg/dataset"
)

// imageRef points at one image of a source; pixels are rendered on demand, so a task over
// 60,000 digits holds 47 MB of bytes rather than 700 MB of float32.
type imageRef struct {
	src imageSource
	i   int
}

func (r *imageRef) render() ([]float32, error) { return r.src.render(r.i) }

type imageSource interface {
	render(i int) ([]float32, error)
}

// graySource renders 28x28 gray digits or clothes: ink is 1, background 0. Larger targets are
// padded (centred), smaller ones area-averaged.
type graySource struct {
	im       *dataset.Images
	size, ch int
}

func (g *graySource) render(i int) ([]float32, error) {
	h, w := g.im.Height, g.im.Width
	px := g.im.Image(i)
	gray := make([]float32, h*w)
	for k, v := range px {
		gray[k] = float32(v) / 255
	}
	if g.size != h || g.size != w {
		if g.size >= h && g.size >= w {
			gray = pad(gray, h, w, g.size)
		} else {
			gray = resizeArea(gray, h, w, 1, g.size)
		}
	}
	return expand(gray, g.ch), nil
}

// emojiSource renders emoji composited over white, area-averaged to size, cached after the
// first decode.
type emojiSource struct {
	emojis   []dataset.Emoji
	size, ch int
	mu       sync.Mutex
	cache    map[int][]float32
}

func (e *emojiSource) render(i int) ([]float32, error) {
	e.mu.Lock()
	if px, ok := e.cache[i]; ok {
		e.mu.Unlock()
		return px, nil
	}
	e.mu.Unlock()
	img, err := e.emojis[i].Image()
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	rgb := make([]float32, h*w*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := img.NRGBAAt(b.Min.X+x, b.Min.Y+y)
			a := float32(c.A) / 255
			k := (y*w + x) * 3
			rgb[k] = a*float32(c.R)/255 + 1 - a
			rgb[k+1] = a*float32(c.G)/255 + 1 - a
			rgb[k+2] = a*float32(c.B)/255 + 1 - a
		}
	}
	if h != e.size || w != e.size {
		rgb = resizeArea(rgb, h, w, 3, e.size)
	}
	if e.ch == 1 {
		gray := make([]float32, e.size*e.size)
		for k := range gray {
			gray[k] = 0.299*rgb[3*k] + 0.587*rgb[3*k+1] + 0.114*rgb[3*k+2]
		}
		rgb = gray
	}
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[int][]float32{}
	}
	e.cache[i] = rgb
	e.mu.Unlock()
	return rgb, nil
}

// pad centres an h x w single-channel image in a size x size zero image.
func pad(src []float32, h, w, size int) []float32 {
	out := make([]float32, size*size)
	oy, ox := (size-h)/2, (size-w)/2
	for y := 0; y < h; y++ {
		copy(out[(y+oy)*size+ox:], src[y*w:(y+1)*w])
	}
	return out
}

// expand repeats a single-channel image into ch channels.
func expand(gray []float32, ch int) []float32 {
	if ch == 1 {
		return gray
	}
	out := make([]float32, len(gray)*ch)
	for k, v := range gray {
		for c := 0; c < ch; c++ {
			out[k*ch+c] = v
		}
	}
	return out
}

// resizeArea resamples an h x w x ch image to size x size by area averaging: every output
// pixel is the mean of the source area it covers (fractional pixels weighted by overlap).
func resizeArea(src []float32, h, w, ch, size int) []float32 {
	wy, wx := areaWeights(h, size), areaWeights(w, size)
	// Rows first: size x w x ch, then columns.
	tmp := make([]float32, size*w*ch)
	for oy, ws := range wy {
		for _, sw := range ws {
			row := src[sw.i*w*ch : (sw.i+1)*w*ch]
			dst := tmp[oy*w*ch : (oy+1)*w*ch]
			for k, v := range row {
				dst[k] += sw.w * v
			}
		}
	}
	out := make([]float32, size*size*ch)
	for oy := 0; oy < size; oy++ {
		for ox, ws := range wx {
			for _, sw := range ws {
				for c := 0; c < ch; c++ {
					out[(oy*size+ox)*ch+c] += sw.w * tmp[(oy*w+sw.i)*ch+c]
				}
			}
		}
	}
	return out
}

type srcWeight struct {
	i int
	w float32
}

// areaWeights gives, for each of size output positions, the source positions of n it covers
// and their weights (summing to 1).
func areaWeights(n, size int) [][]srcWeight {
	scale := float64(n) / float64(size)
	out := make([][]srcWeight, size)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < n && float64(i) < hi; i++ {
			overlap := min(hi, float64(i+1)) - max(lo, float64(i))
			if overlap > 1e-9 {
				out[o] = append(out[o], srcWeight{i, float32(overlap / scale)})
			}
		}
	}
	return out
}

func checkImage(px []float32, size, ch int) error {
	if len(px) != size*size*ch {
		return fmt.Errorf("image has %d values, want %dx%dx%d", len(px), size, size, ch)
	}
	return nil
}
