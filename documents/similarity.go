package documents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"unicode"
)

// Similarity tuning. A passage is copied when it shares at least
// MinPassageWords words in a row (k-word shingles selected by winnowing);
// a screenshot when its DHash is within MaxImageDistance bits (and its
// OCR'd text alike).
type SimilarityOptions struct {
	// ShingleWords is k, the words of one shingle (default 8).
	ShingleWords int
	// Window is the winnowing window (default 4): any shared run of
	// ShingleWords+Window-1 words is certain to be found.
	Window int
	// MinPassageWords is the shortest shared passage reported (default 40).
	MinPassageWords int
	// MaxImageDistance is the largest DHash distance of two copies of one
	// picture (default 9 of 256 bits). When both pictures have OCR'd text,
	// the texts must also be alike (MinOCRSimilarity of their character
	// trigrams, default 0.6).
	MaxImageDistance int
	MinOCRSimilarity float64
	// CommonShare: a shingle or picture found in more than this share of
	// the class (and in at least 3 students) is common material, not copying
	// (default 0.3).
	CommonShare float64
}

func (o SimilarityOptions) withDefaults() SimilarityOptions {
	if o.ShingleWords <= 0 {
		o.ShingleWords = 8
	}
	if o.Window <= 0 {
		o.Window = 4
	}
	if o.MinPassageWords <= 0 {
		o.MinPassageWords = 40
	}
	if o.MaxImageDistance <= 0 {
		o.MaxImageDistance = 9
	}
	if o.MinOCRSimilarity <= 0 {
		o.MinOCRSimilarity = 0.6
	}
	if o.CommonShare <= 0 {
		o.CommonShare = 0.3
	}
	return o
}

// Work is one student's material compared for copying.
type Work struct {
	// Who names the student (the row's key); Name is shown.
	Who, Name string
	Docs      []*Document
	VM        *VMPrint
}

// VMPrint is what identifies a VM: cloned VMs share it.
type VMPrint struct {
	MachineID string
	HostKeys  []string // fingerprints
	// History is the shell history (the lines kept by the probe).
	History []string
	// HistoryFiles are the history files' hashes (whole, first 30 lines).
	HistoryFiles []HistorySum
}

// HistorySum is one shell history file's length and hashes.
type HistorySum struct {
	File         string
	Lines        int
	Sum, HeadSum string
}

// historyHeadLines is how many first lines HeadSum covers (observe.sh).
const historyHeadLines = 30

// Pair is two students whose work shares something.
type Pair struct {
	A, B string // Who of each
	// NameA, NameB are shown.
	NameA, NameB string
	// Kind: "texto", "captura" or "VM".
	Kind string
	// Words is the length of the longest shared passage (texto); Share the
	// share of the shorter text that is shared (texto).
	Words int
	Share float64
	// Distance of the two pictures (captura), 0 for exact copies.
	Distance int
	// Evidence: the passage with its pages, the pictures with their pages,
	// or what the VMs share.
	Evidence string
}

// Reference is text and pictures that are not copying when shared: the
// practice's statement and the template.
type Reference struct {
	Texts  []string
	Images []DHash
}

type wordPos struct {
	doc, page int
}

type textPrint struct {
	words []string
	where []wordPos
	files []string
	// fp maps a selected fingerprint to its first word positions.
	fp map[uint64][]int
}

// Similar finds the pairs of students sharing long passages, the same
// screenshot or a cloned VM. Shared material that is in ref or in a large
// share of the class is left out.
func Similar(works []Work, ref Reference, o SimilarityOptions) []Pair {
	o = o.withDefaults()
	var pairs []Pair
	pairs = append(pairs, similarText(works, ref, o)...)
	pairs = append(pairs, similarImages(works, ref, o)...)
	pairs = append(pairs, similarVMs(works)...)
	sort.SliceStable(pairs, func(i, j int) bool {
		if pairs[i].A != pairs[j].A {
			return pairs[i].A < pairs[j].A
		}
		if pairs[i].B != pairs[j].B {
			return pairs[i].B < pairs[j].B
		}
		return pairs[i].Kind < pairs[j].Kind
	})
	return pairs
}

// tokens splits text into folded words.
func tokens(s string) []string {
	return strings.FieldsFunc(foldKey(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func shingleHashes(words []string, k int) []uint64 {
	if len(words) < k {
		return nil
	}
	out := make([]uint64, len(words)-k+1)
	for i := range out {
		h := fnv.New64a()
		for _, w := range words[i : i+k] {
			h.Write([]byte(w))
			h.Write([]byte{0})
		}
		out[i] = h.Sum64()
	}
	return out
}

// winnow selects the minimum hash of every window of w shingles (the
// rightmost on ties), with its position.
func winnow(hs []uint64, w int) map[uint64][]int {
	out := map[uint64][]int{}
	if len(hs) == 0 {
		return out
	}
	if len(hs) < w {
		w = len(hs)
	}
	last := -1
	for i := 0; i+w <= len(hs); i++ {
		m := i
		for j := i; j < i+w; j++ {
			if hs[j] <= hs[m] {
				m = j
			}
		}
		if m != last {
			out[hs[m]] = append(out[hs[m]], m)
			last = m
		}
	}
	return out
}

func printOf(w Work, k, win int) *textPrint {
	tp := &textPrint{}
	for di, d := range w.Docs {
		tp.files = append(tp.files, d.File)
		for _, p := range d.Pages {
			for _, t := range tokens(p.Text) {
				tp.words = append(tp.words, t)
				tp.where = append(tp.where, wordPos{doc: di, page: p.N})
			}
		}
	}
	tp.fp = winnow(shingleHashes(tp.words, k), win)
	return tp
}

func similarText(works []Work, ref Reference, o SimilarityOptions) []Pair {
	k := o.ShingleWords
	refSet := map[uint64]bool{}
	for _, t := range ref.Texts {
		for _, h := range shingleHashes(tokens(t), k) {
			refSet[h] = true
		}
	}
	prints := make([]*textPrint, len(works))
	owners := map[uint64][]int{}
	for i, w := range works {
		prints[i] = printOf(w, k, o.Window)
		for h := range prints[i].fp {
			if !refSet[h] {
				owners[h] = append(owners[h], i)
			}
		}
	}
	common := commonLimit(len(works), o.CommonShare)
	shared := map[[2]int][]uint64{}
	for h, who := range owners {
		if len(who) < 2 || len(who) > common {
			continue
		}
		for x := 0; x < len(who); x++ {
			for y := x + 1; y < len(who); y++ {
				shared[[2]int{who[x], who[y]}] = append(shared[[2]int{who[x], who[y]}], h)
			}
		}
	}
	var out []Pair
	for ij, hs := range shared {
		a, b := prints[ij[0]], prints[ij[1]]
		// Positions in a of the shared shingles, merged into runs.
		var pos []int
		for _, h := range hs {
			pos = append(pos, a.fp[h]...)
		}
		sort.Ints(pos)
		bestStart, bestEnd := -1, -1
		start, end := -1, -1
		for _, p := range pos {
			if start >= 0 && p <= end+o.Window {
				end = max(end, p+k)
				continue
			}
			if start >= 0 && end-start > bestEnd-bestStart {
				bestStart, bestEnd = start, end
			}
			start, end = p, p+k
		}
		if start >= 0 && end-start > bestEnd-bestStart {
			bestStart, bestEnd = start, end
		}
		words := bestEnd - bestStart
		smaller := min(len(a.fp), len(b.fp))
		share := 0.0
		if smaller > 0 {
			share = float64(len(hs)) / float64(smaller)
		}
		if words < o.MinPassageWords {
			continue
		}
		bestEnd = min(bestEnd, len(a.words))
		passage := strings.Join(a.words[bestStart:bestEnd], " ")
		if len(passage) > 600 {
			passage = passage[:600] + "…"
		}
		// Where the passage is in b: the first shared shingle's position.
		bPage := ""
		for _, h := range hs {
			for _, p := range a.fp[h] {
				if p >= bestStart && p < bestEnd && len(b.fp[h]) > 0 {
					bp := b.where[b.fp[h][0]]
					bPage = fmt.Sprintf("%s p. %d", b.files[bp.doc], bp.page)
				}
			}
			if bPage != "" {
				break
			}
		}
		ap := a.where[bestStart]
		wa, wb := works[ij[0]], works[ij[1]]
		out = append(out, orderPair(Pair{
			A: wa.Who, B: wb.Who, NameA: wa.Name, NameB: wb.Name, Kind: "texto", Words: words, Share: math.Round(share*100) / 100,
			Evidence: fmt.Sprintf("%d palabras seguidas en común (%s p. %d; %s): «%s»", words, a.files[ap.doc], ap.page, bPage, passage),
		}))
	}
	return out
}

func commonLimit(n int, share float64) int {
	return max(2, int(math.Floor(float64(n)*share)))
}

type imgRef struct {
	work int
	doc  int
	img  int
}

func similarImages(works []Work, ref Reference, o SimilarityOptions) []Pair {
	var all []imgRef
	for wi, w := range works {
		for di, d := range w.Docs {
			for ii, im := range d.Images {
				if !im.HashOK {
					continue
				}
				isRef := false
				for _, r := range ref.Images {
					if im.Hash.Distance(r) <= o.MaxImageDistance {
						isRef = true
						break
					}
				}
				if !isRef {
					all = append(all, imgRef{wi, di, ii})
				}
			}
		}
	}
	get := func(r imgRef) *Image { return &works[r.work].Docs[r.doc].Images[r.img] }
	// Which students hold a copy of each picture: a picture most of the
	// class has is common material (a figure of the statement).
	holders := make([]map[int]bool, len(all))
	type match struct{ x, y, d int }
	var matches []match
	for x := range all {
		holders[x] = map[int]bool{all[x].work: true}
	}
	for x := 0; x < len(all); x++ {
		ix := get(all[x])
		for y := x + 1; y < len(all); y++ {
			if all[y].work == all[x].work {
				continue
			}
			iy := get(all[y])
			d := ix.Hash.Distance(iy.Hash)
			if d > o.MaxImageDistance || !sameAspect(ix, iy) || !ocrAlike(ix.OCR, iy.OCR, o.MinOCRSimilarity) {
				continue
			}
			holders[x][all[y].work] = true
			holders[y][all[x].work] = true
			matches = append(matches, match{x, y, d})
		}
	}
	common := commonLimit(len(works), o.CommonShare)
	best := map[[2]int]match{}
	for _, m := range matches {
		if len(holders[m.x]) > common || len(holders[m.y]) > common {
			continue
		}
		key := [2]int{all[m.x].work, all[m.y].work}
		if key[0] > key[1] {
			key[0], key[1] = key[1], key[0]
		}
		if old, ok := best[key]; !ok || m.d < old.d {
			best[key] = m
		}
	}
	var out []Pair
	for _, m := range best {
		ra, rb := all[m.x], all[m.y]
		ia, ib := get(ra), get(rb)
		wa, wb := works[ra.work], works[rb.work]
		n := 0
		for _, mm := range matches {
			if (all[mm.x].work == ra.work && all[mm.y].work == rb.work) || (all[mm.x].work == rb.work && all[mm.y].work == ra.work) {
				n++
			}
		}
		ev := fmt.Sprintf("la misma captura: %s (%s, %dx%d) y %s (%s, %dx%d), distancia %d de 256 bits",
			wa.Docs[ra.doc].File, ia.Name, ia.Width, ia.Height, wb.Docs[rb.doc].File, ib.Name, ib.Width, ib.Height, m.d)
		if n > 1 {
			ev += fmt.Sprintf("; %d capturas en común", n)
		}
		out = append(out, orderPair(Pair{A: wa.Who, B: wb.Who, NameA: wa.Name, NameB: wb.Name, Kind: "captura", Distance: m.d, Evidence: ev}))
	}
	return out
}

// sameAspect: a resized copy keeps its width/height ratio (within 4%).
func sameAspect(a, b *Image) bool {
	if a.Height == 0 || b.Height == 0 {
		return true
	}
	ra := float64(a.Width) / float64(a.Height)
	rb := float64(b.Width) / float64(b.Height)
	return math.Abs(ra-rb) <= 0.04*math.Max(ra, rb)
}

func similarVMs(works []Work) []Pair {
	var out []Pair
	for x := 0; x < len(works); x++ {
		for y := x + 1; y < len(works); y++ {
			a, b := works[x].VM, works[y].VM
			if a == nil || b == nil {
				continue
			}
			var why []string
			if a.MachineID != "" && a.MachineID == b.MachineID {
				why = append(why, "el mismo machine-id ("+shortSum(a.MachineID)+"…)")
			}
			for _, k := range a.HostKeys {
				for _, l := range b.HostKeys {
					if k != "" && k == l {
						why = append(why, "la misma clave de host SSH "+k)
					}
				}
			}
			why = append(why, sameHistory(a, b)...)
			if len(why) > 0 {
				out = append(out, orderPair(Pair{A: works[x].Who, B: works[y].Who, NameA: works[x].Name, NameB: works[y].Name, Kind: "VM",
					Evidence: "VM clonada: " + strings.Join(why, "; ")}))
			}
		}
	}
	return out
}

func orderPair(p Pair) Pair {
	if p.A > p.B {
		p.A, p.B = p.B, p.A
		p.NameA, p.NameB = p.NameB, p.NameA
	}
	return p
}

// ocrAlike compares the text OCR read in two pictures (character trigrams,
// Jaccard): a copy reads alike; a screenshot of the same window with other
// values does not. Pictures without text are not compared.
func ocrAlike(a, b string, min float64) bool {
	ta, tb := trigrams(a), trigrams(b)
	if len(ta) < 10 || len(tb) < 10 {
		return true
	}
	inter := 0
	for g := range ta {
		if tb[g] {
			inter++
		}
	}
	union := len(ta) + len(tb) - inter
	return float64(inter)/float64(union) >= min
}

func trigrams(s string) map[string]bool {
	var b strings.Builder
	for _, r := range foldKey(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	rs := []rune(b.String())
	out := map[string]bool{}
	for i := 0; i+3 <= len(rs); i++ {
		out[string(rs[i:i+3])] = true
	}
	return out
}

// shortSum shows a machine-id by the start of its hash (the id itself is
// meant to stay on the machine).
func shortSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// sameHistory says how two VMs' shell histories match: a history file with
// the same content (at least 10 lines), or the same first 30 lines (a clone
// used after), or the same kept lines (at least 5; probes without hashes).
func sameHistory(a, b *VMPrint) []string {
	var why []string
	for _, x := range a.HistoryFiles {
		for _, y := range b.HistoryFiles {
			switch {
			case x.Lines >= 10 && x.Sum == y.Sum:
				why = append(why, fmt.Sprintf("el mismo historial de shell (%s y %s, %d líneas idénticas)", x.File, y.File, x.Lines))
			case x.Lines >= historyHeadLines && y.Lines >= historyHeadLines && x.HeadSum == y.HeadSum:
				why = append(why, fmt.Sprintf("el mismo comienzo del historial de shell (%s y %s: sus %d primeras líneas)", x.File, y.File, historyHeadLines))
			default:
				continue
			}
			return why
		}
	}
	if len(a.History) >= 5 && len(b.History) >= 5 && strings.Join(a.History, "\n") == strings.Join(b.History, "\n") {
		why = append(why, fmt.Sprintf("el mismo historial de shell (%d líneas)", len(a.History)))
	}
	return why
}
