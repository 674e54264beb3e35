package render

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart is one picture: an SVG document that stands alone (its styles are
// attributes, its font the reader's sans-serif), so that it can be inlined
// in a report or saved as a file and pasted into a document.
type Chart struct {
	// Name is the file name without extension: "alu01-api-n1000-rps".
	Name string
	// Kind is the chart's type: rps, latency, timeline, workers, cpu,
	// blocking (the svg's data-chart attribute).
	Kind  string
	Title string
	// SVG is the document, starting with <svg.
	SVG string
}

// Colours, one per server in report order, and the outcome colours.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	colAxis   = "#444"
	colGrid   = "#ddd"
	colText   = "#222"
	colMuted  = "#666"
	colHeavy  = "#555"
	colWaited = "#d62728"
	colQuick  = "#2ca02c"
)

// svgDoc builds an SVG document. Every text and attribute value goes
// through esc: labels come from hosts and plans.
type svgDoc struct {
	b    strings.Builder
	w, h float64
}

func newSVG(w, h float64, kind, title string) *svgDoc {
	s := &svgDoc{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" role="img" aria-label="%s" data-chart="%s" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="12">`,
		num(w), num(h), num(w), num(h), esc(title), esc(kind))
	s.b.WriteString("\n")
	fmt.Fprintf(&s.b, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(&s.b, `<rect x="0" y="0" width="%s" height="%s" fill="#fff"/>`+"\n", num(w), num(h))
	s.text(w/2, 20, "middle", title, "font-size", "14", "font-weight", "bold")
	return s
}

func esc(s string) string { return html.EscapeString(s) }

// num formats a coordinate: at most one decimal, no trailing zeros.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// attrs renders name/value pairs.
func attrs(kv []string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, ` %s="%s"`, kv[i], esc(kv[i+1]))
	}
	return b.String()
}

func (s *svgDoc) rect(x, y, w, h float64, fill string, kv ...string) {
	if h < 0 {
		y, h = y+h, -h
	}
	fmt.Fprintf(&s.b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"%s/>`+"\n", num(x), num(y), num(w), num(h), esc(fill), attrs(kv))
}

func (s *svgDoc) line(x1, y1, x2, y2 float64, stroke string, kv ...string) {
	fmt.Fprintf(&s.b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"%s/>`+"\n", num(x1), num(y1), num(x2), num(y2), esc(stroke), attrs(kv))
}

func (s *svgDoc) text(x, y float64, anchor, txt string, kv ...string) {
	fill := ` fill="` + colText + `"`
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "fill" {
			fill = ""
		}
	}
	fmt.Fprintf(&s.b, `<text x="%s" y="%s" text-anchor="%s"%s%s>%s</text>`+"\n", num(x), num(y), anchor, fill, attrs(kv), esc(txt))
}

func (s *svgDoc) circle(x, y, r float64, fill string, kv ...string) {
	fmt.Fprintf(&s.b, `<circle cx="%s" cy="%s" r="%s" fill="%s"%s/>`+"\n", num(x), num(y), num(r), esc(fill), attrs(kv))
}

func (s *svgDoc) polyline(xs, ys []float64, stroke string, kv ...string) {
	var pts []string
	for i := range xs {
		pts = append(pts, num(xs[i])+","+num(ys[i]))
	}
	fmt.Fprintf(&s.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), esc(stroke), attrs(kv))
}

func (s *svgDoc) open(tag string, kv ...string) { fmt.Fprintf(&s.b, "<%s%s>\n", tag, attrs(kv)) }
func (s *svgDoc) close(tag string)              { fmt.Fprintf(&s.b, "</%s>\n", tag) }

func (s *svgDoc) String() string { return s.b.String() + "</svg>\n" }

// legend draws one coloured square and name per series, left to right
// from (x, y).
func (s *svgDoc) legend(x, y float64, names []string, colours []string) {
	for i, n := range names {
		s.rect(x, y-9, 10, 10, colours[i%len(colours)])
		s.text(x+14, y, "start", n)
		x += 24 + 7*float64(len([]rune(n)))
	}
}

// niceMax returns the top of an axis from 0 that holds v and its tick
// step: the step is 1, 2, 2.5 or 5 times a power of ten, with at most six
// steps up to the top.
func niceMax(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1, 0.2
	}
	p := math.Pow(10, math.Floor(math.Log10(v/5)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		step = m * p
		if math.Ceil(v/step-1e-9) <= 6 {
			break
		}
	}
	return math.Ceil(v/step-1e-9) * step, step
}

// fmtTick formats an axis value briefly: 1500 → 1.5k.
func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// plot is a chart's drawing area and its linear value axis from 0.
type plot struct {
	s                     *svgDoc
	left, top, w, h, vmax float64
}

// valueAxis draws a linear axis from 0 to the nice maximum above vmax on
// the left, with grid lines and its unit, and returns the plot.
func (s *svgDoc) valueAxis(left, top, w, h, vmax float64, unit string) *plot {
	top2, step := niceMax(vmax)
	p := &plot{s: s, left: left, top: top, w: w, h: h, vmax: top2}
	s.open("g", "class", "axis", "data-axis", "y", "data-min", "0", "data-max", fmtTick(top2), "data-zero-y", num(p.y(0)))
	for v := 0.0; v <= top2*(1+1e-9); v += step {
		y := p.y(v)
		s.line(left, y, left+w, y, colGrid)
		s.text(left-6, y+4, "end", fmtTick(v), "class", "tick")
	}
	s.line(left, top, left, top+h, colAxis)
	s.line(left, top+h, left+w, top+h, colAxis)
	s.text(8, top-10, "start", unit, "fill", colMuted)
	s.close("g")
	return p
}

// y is the vertical position of value v.
func (p *plot) y(v float64) float64 { return p.top + p.h - p.h*v/p.vmax }
