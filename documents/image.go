package documents

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // screenshots in documents
	_ "image/jpeg" // screenshots in documents
	_ "image/png"  // screenshots in documents
	"io"
	"math/bits"
	"os"
	"strconv"
)

// DHash is a 256-bit difference hash: the picture is shrunk to 17×16 grey
// cells (box filter, so a resized copy shrinks to nearly the same cells) and
// each bit says whether a cell is brighter than its right neighbour. A
// re-saved or resized copy differs in a few bits (6-8 at 80% and 60%);
// another screenshot of the same window with other values may differ in as
// few as 10, so Similar also compares the pictures' OCR'd text when it has
// it.
//
// It is written here rather than taken from github.com/corona10/goimagehash
// (64 bits, needs an image.Image and a resampling library): PDF pictures come
// from pdfimages as raw PNM pixels and are hashed without any re-encoding,
// and 64 bits tell two different terminal screenshots apart poorly.
type DHash [4]uint64

// Distance is the number of differing bits.
func (h DHash) Distance(o DHash) int {
	d := 0
	for i := range h {
		d += bits.OnesCount64(h[i] ^ o[i])
	}
	return d
}

func (h DHash) String() string {
	return fmt.Sprintf("%016x%016x%016x%016x", h[0], h[1], h[2], h[3])
}

const hashW, hashH = 17, 16

// hashMargin is the grey-level step a cell must be brighter by to set its
// bit.
const hashMargin = 5

// HashImage computes the DHash of img.
func HashImage(img image.Image) DHash {
	b := img.Bounds()
	var sum [hashH][hashW]float64
	var cnt [hashH][hashW]float64
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return DHash{}
	}
	// Sample at most ~512×512 points: enough for 17×16 cells, cheap for a
	// 4K screenshot.
	sx, sy := max(1, w/512), max(1, h/512)
	gray := grayFunc(img)
	for y := 0; y < h; y += sy {
		cy := y * hashH / h
		for x := 0; x < w; x += sx {
			cx := x * hashW / w
			sum[cy][cx] += gray(b.Min.X+x, b.Min.Y+y)
			cnt[cy][cx]++
		}
	}
	var out DHash
	bit := 0
	for y := 0; y < hashH; y++ {
		for x := 0; x < hashW-1; x++ {
			a, c := avg(sum[y][x], cnt[y][x]), avg(sum[y][x+1], cnt[y][x+1])
			// A margin keeps flat areas (a window's background) from
			// flipping bits on resampling noise.
			if a > c+hashMargin {
				out[bit/64] |= 1 << (bit % 64)
			}
			bit++
		}
	}
	return out
}

func avg(s, n float64) float64 {
	if n == 0 {
		return 0
	}
	return s / n
}

// grayFunc returns a fast luminance reader for the common image types.
func grayFunc(img image.Image) func(x, y int) float64 {
	switch m := img.(type) {
	case *image.Gray:
		return func(x, y int) float64 { return float64(m.Pix[m.PixOffset(x, y)]) }
	case *image.RGBA:
		return func(x, y int) float64 {
			i := m.PixOffset(x, y)
			return lum(m.Pix[i], m.Pix[i+1], m.Pix[i+2])
		}
	case *image.NRGBA:
		return func(x, y int) float64 {
			i := m.PixOffset(x, y)
			return lum(m.Pix[i], m.Pix[i+1], m.Pix[i+2])
		}
	case *image.YCbCr:
		return func(x, y int) float64 { return float64(m.Y[m.YOffset(x, y)]) }
	}
	return func(x, y int) float64 {
		g := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
		return float64(g.Y)
	}
}

func lum(r, g, b uint8) float64 { return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) }

// maxPixels bounds a decoded picture (a 16K×16K bomb is refused).
const maxPixels = 80_000_000

// decodeFile decodes a PNG, JPEG, GIF or PNM (P4, P5, P6) picture.
func decodeFile(p string) (image.Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 'P' && head[1] >= '4' && head[1] <= '6' {
		return decodePNM(br)
	}
	cfg, _, err := image.DecodeConfig(br)
	if err != nil {
		return nil, err
	}
	if cfg.Width*cfg.Height > maxPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, errors.New("imagen demasiado grande")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bufio.NewReaderSize(f, 1<<16))
	return img, err
}

// DecodeImage decodes a picture held in memory (PNG, JPEG, GIF, PNM).
func DecodeImage(b []byte) (image.Image, error) {
	if len(b) >= 2 && b[0] == 'P' && b[1] >= '4' && b[1] <= '6' {
		return decodePNM(bufio.NewReader(bytes.NewReader(b)))
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	if cfg.Width*cfg.Height > maxPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, errors.New("imagen demasiado grande")
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

// decodePNM reads binary PBM (P4), PGM (P5) and PPM (P6) with maxval ≤ 255,
// as pdfimages writes them.
func decodePNM(r *bufio.Reader) (image.Image, error) {
	magic := make([]byte, 2)
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, err
	}
	nums := 3
	if magic[1] == '4' {
		nums = 2
	}
	var v [3]int
	for i := 0; i < nums; i++ {
		n, err := pnmInt(r)
		if err != nil {
			return nil, err
		}
		v[i] = n
	}
	w, h := v[0], v[1]
	if w <= 0 || h <= 0 || w > 1<<16 || h > 1<<16 || w*h > maxPixels {
		return nil, errors.New("pnm: tamaño no válido")
	}
	if nums == 3 && (v[2] <= 0 || v[2] > 255) {
		return nil, errors.New("pnm: maxval no admitido")
	}
	switch magic[1] {
	case '4':
		g := image.NewGray(image.Rect(0, 0, w, h))
		row := make([]byte, (w+7)/8)
		for y := 0; y < h; y++ {
			if _, err := io.ReadFull(r, row); err != nil {
				return nil, err
			}
			for x := 0; x < w; x++ {
				if row[x/8]&(0x80>>(x%8)) == 0 {
					g.Pix[y*g.Stride+x] = 255
				}
			}
		}
		return g, nil
	case '5':
		g := image.NewGray(image.Rect(0, 0, w, h))
		if _, err := io.ReadFull(r, g.Pix); err != nil {
			return nil, err
		}
		return g, nil
	default:
		m := image.NewRGBA(image.Rect(0, 0, w, h))
		row := make([]byte, 3*w)
		for y := 0; y < h; y++ {
			if _, err := io.ReadFull(r, row); err != nil {
				return nil, err
			}
			o := y * m.Stride
			for x := 0; x < w; x++ {
				m.Pix[o+4*x], m.Pix[o+4*x+1], m.Pix[o+4*x+2], m.Pix[o+4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 255
			}
		}
		return m, nil
	}
}

// pnmInt reads a header number, skipping white space and # comments, and
// the single white space after it.
func pnmInt(r *bufio.Reader) (int, error) {
	var digits []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch {
		case c == '#':
			if _, err := r.ReadString('\n'); err != nil {
				return 0, err
			}
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			if len(digits) > 9 {
				return 0, errors.New("pnm: número demasiado largo")
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if len(digits) > 0 {
				return strconv.Atoi(string(digits))
			}
		default:
			return 0, errors.New("pnm: cabecera no válida")
		}
	}
}
