package documents

import (
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Student is an inventory row a submission can belong to.
type Student struct {
	// Key identifies the row (gradebook.Student.Key()).
	Key   string
	Name  string
	ID    string
	Email string
}

// Matching is the result of Match.
type Matching struct {
	// ByStudent maps a student's Key to their submission.
	ByStudent map[string]*Submission
	// How says how each matched student was found ("nombre", "id",
	// "email"), by Key.
	How map[string]string
	// Unmatched are the submissions no student was found for.
	Unmatched []*Submission
}

// Match assigns submissions to students: by name (case-, accent- and
// word-order-insensitive; a unique subset of two or more words also
// matches: "Ana García" for "Ana García López"), by id (Moodle's number or a
// file name holding it) or by email (its address or local part in the
// folder or file names). A submission matches at most one student and a
// student at most one submission (two folders of one student are merged by
// LoadSubmissions already).
func Match(subs []*Submission, students []Student) Matching {
	m := Matching{ByStudent: map[string]*Submission{}, How: map[string]string{}}
	used := map[*Submission]bool{}
	assign := func(st Student, s *Submission, how string) {
		m.ByStudent[st.Key] = s
		m.How[st.Key] = how
		used[s] = true
	}
	// 1: the whole name, any order.
	byName := map[string][]*Submission{}
	for _, s := range subs {
		k := nameKey(s.Name)
		if k != "" {
			byName[k] = append(byName[k], s)
		}
	}
	for _, st := range students {
		if c := byName[nameKey(st.Name)]; len(c) == 1 && nameKey(st.Name) != "" && !used[c[0]] {
			assign(st, c[0], "nombre")
		}
	}
	// 2: id or email in the folder or file names.
	for _, st := range students {
		if _, ok := m.ByStudent[st.Key]; ok {
			continue
		}
		var cands []*Submission
		how := ""
		for _, s := range subs {
			if used[s] {
				continue
			}
			if h := idMatch(st, s); h != "" {
				cands = append(cands, s)
				how = h
			}
		}
		if len(cands) == 1 {
			assign(st, cands[0], how)
		}
	}
	// 3: a unique subset of words (two or more) one way or the other.
	for _, st := range students {
		if _, ok := m.ByStudent[st.Key]; ok {
			continue
		}
		sw := words(st.Name)
		if len(sw) < 2 {
			continue
		}
		var cands []*Submission
		for _, s := range subs {
			if used[s] {
				continue
			}
			w := words(s.Name)
			if len(w) >= 2 && (subset(w, sw) || subset(sw, w)) {
				cands = append(cands, s)
			}
		}
		if len(cands) == 1 {
			// And no other student claims the same submission.
			others := 0
			w := words(cands[0].Name)
			for _, o := range students {
				if o.Key == st.Key {
					continue
				}
				ow := words(o.Name)
				if len(ow) >= 2 && (subset(w, ow) || subset(ow, w)) {
					others++
				}
			}
			if others == 0 {
				assign(st, cands[0], "nombre (parcial)")
			}
		}
	}
	for _, s := range subs {
		if !used[s] {
			m.Unmatched = append(m.Unmatched, s)
		}
	}
	return m
}

func idMatch(st Student, s *Submission) string {
	hay := []string{foldKey(s.Folder), s.Number}
	for _, f := range s.Files {
		hay = append(hay, foldKey(f.Name))
	}
	id := strings.TrimSpace(strings.ToLower(st.ID))
	email := strings.TrimSpace(strings.ToLower(st.Email))
	if strings.Contains(id, "@") && email == "" {
		email, id = id, ""
	}
	if id != "" {
		if s.Number == id {
			return "id"
		}
		if len(id) >= 4 {
			for _, h := range hay[:1] {
				if containsToken(h, id) {
					return "id"
				}
			}
			for _, h := range hay[2:] {
				if containsToken(h, id) {
					return "id"
				}
			}
		}
	}
	if email != "" {
		local, _, _ := strings.Cut(email, "@")
		for i, h := range hay {
			if i == 1 {
				continue
			}
			if strings.Contains(h, email) || (len(local) >= 4 && containsToken(h, local)) {
				return "email"
			}
		}
	}
	return ""
}

// containsToken reports whether tok appears in h between non-alphanumeric
// characters.
func containsToken(h, tok string) bool {
	for i := 0; ; {
		j := strings.Index(h[i:], tok)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !isAlnum(rune(h[j-1]))
		e := j + len(tok)
		after := e == len(h) || !isAlnum(rune(h[e]))
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// foldKey lower-cases s and strips accents ("García" → "garcia").
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// words are the folded words of a name, sorted, without duplicates.
func words(s string) []string {
	f := strings.FieldsFunc(foldKey(s), func(r rune) bool { return !isAlnum(r) })
	sort.Strings(f)
	out := f[:0]
	for i, w := range f {
		if i == 0 || w != f[i-1] {
			out = append(out, w)
		}
	}
	return out
}

// nameKey is a name with case, accents and word order folded away.
func nameKey(s string) string { return strings.Join(words(s), " ") }

// subset reports whether every word of a is in b (both sorted).
func subset(a, b []string) bool {
	j := 0
	for _, w := range a {
		for j < len(b) && b[j] < w {
			j++
		}
		if j == len(b) || b[j] != w {
			return false
		}
	}
	return true
}
