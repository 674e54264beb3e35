package documents

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploylab/deploylab/documents/documentstest"
)

type zent struct {
	name string
	data []byte
	mode os.FileMode
}

func mkzip(t testing.TB, path string, ents []zent) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func zipBytes(t testing.TB, ents []zent) []byte {
	p := filepath.Join(t.TempDir(), "n.zip")
	mkzip(t, p, ents)
	b, _ := os.ReadFile(p)
	return b
}

func fileNames(s *Submission) []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Name)
	}
	return out
}

// TestLoadSubmissionsHostile: ../ and absolute paths, links, a zip bomb, a
// file over the size limit and nested zips never escape the temp dir; each
// is one problem line and the rest is read.
func TestLoadSubmissionsHostile(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "escaped.txt")
	nested := zipBytes(t, []zent{{name: "dentro/informe.md", data: []byte("# Informe\nhola")}, {name: "../../fuera.txt", data: []byte("x")}})
	bomb := bytes.Repeat([]byte{0}, 3<<20) // compresses to a few KB
	p := filepath.Join(dir, "entregas.zip")
	mkzip(t, p, []zent{
		{name: "Ana García_101_assignsubmission_file_/practica.md", data: []byte("# Práctica\ntexto")},
		{name: "Ana García_101_assignsubmission_file_/../../escaped.txt", data: []byte("evil")},
		{name: "/etc/evil.txt", data: []byte("evil")},
		{name: "Luis Pérez_102_assignsubmission_file_/enlace", data: []byte("/etc/passwd"), mode: os.ModeSymlink | 0o777},
		{name: "Luis Pérez_102_assignsubmission_file_/entrega.zip", data: nested},
		{name: "Marta López_103_assignsubmission_file_/grande.pdf", data: bomb},
		{name: "Marta López_103_assignsubmission_file_/bien.txt", data: []byte("hola")},
		{name: "Pedro Ruiz_104_assignsubmission_onlinetext_/onlinetext.html", data: []byte("<h1>Hola</h1><p>pm2 ls</p>")},
	})
	set, err := LoadSubmissions(p, Limits{MaxFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if _, err := os.Stat(outside); err == nil {
		t.Fatal("an entry was written outside the temp dir")
	}
	got := map[string][]string{}
	for _, s := range set.Submissions {
		got[s.Name+"/"+s.Number] = fileNames(s)
	}
	want := map[string][]string{
		"Ana García/101":  {"practica.md"},
		"Luis Pérez/102":  {"entrega.zip/dentro/informe.md"},
		"Marta López/103": {"bien.txt"},
		"Pedro Ruiz/104":  {"onlinetext.html"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("submissions (-want +got):\n%s", d)
	}
	all := strings.Join(set.Problems, "\n")
	for _, s := range set.Submissions {
		all += "\n" + strings.Join(s.Problems, "\n")
	}
	for _, w := range []string{"escaped.txt\" rechazada", "/etc/evil.txt\" rechazada", "enlace\" omitida", "fuera.txt\" rechazada", "grande.pdf omitido"} {
		if !strings.Contains(all, w) {
			t.Errorf("problems lack %q:\n%s", w, all)
		}
	}
}

// TestZipBombTotal: the total limit stops a class archive that unpacks to
// more than allowed, without reading it all.
func TestZipBombTotal(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bomb.zip")
	var ents []zent
	for i := 0; i < 8; i++ {
		ents = append(ents, zent{name: "A B_1_assignsubmission_file_/f" + string(rune('a'+i)) + ".txt", data: bytes.Repeat([]byte("a"), 1<<20)})
	}
	mkzip(t, p, ents)
	set, err := LoadSubmissions(p, Limits{MaxTotalBytes: 3 << 20, MaxFileBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if n := len(set.Submissions[0].Files); n > 3 {
		t.Errorf("%d files unpacked past the 3 MB total", n)
	}
	if !strings.Contains(strings.Join(set.Problems, "\n"), "bomba zip") {
		t.Errorf("no zip bomb line: %q", set.Problems)
	}
}

func TestLoadSubmissionsFolder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Ana García.md"), []byte("# hola"), 0o644)
	os.MkdirAll(filepath.Join(dir, "Luis Pérez"), 0o755)
	os.WriteFile(filepath.Join(dir, "Luis Pérez", "a.txt"), []byte("a"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "Luis Pérez", "pw.txt"))
	os.MkdirAll(filepath.Join(dir, "Marta_103_assignsubmission_file_"), 0o755)
	set, err := LoadSubmissions(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var got []string
	for _, s := range set.Submissions {
		got = append(got, s.Name+":"+strings.Join(fileNames(s), ",")+":"+strings.Join(s.Problems, ","))
	}
	want := []string{"Ana García:Ana García.md:", "Luis Pérez:a.txt:pw.txt omitido: no es un fichero normal (enlace o dispositivo)", "Marta::"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestMatch(t *testing.T) {
	subs := []*Submission{
		{Folder: "GARCIA ana_1_x", Name: "GARCIA ana", Number: "1"},
		{Folder: "Pérez López, Luis_2", Name: "Pérez López Luis", Number: "2"},
		{Folder: "x_3", Name: "Desconocido", Number: "3", Files: []File{{Name: "marta.lopez-practica.pdf"}}},
		{Folder: "y_4", Name: "Nadie", Number: "4", Files: []File{{Name: "entrega-12345678.pdf"}}},
		{Folder: "z_5", Name: "Otro Más", Number: "5"},
	}
	students := []Student{
		{Key: "ana", Name: "Ana García"},
		{Key: "luis", Name: "Luis Pérez"},
		{Key: "marta", Name: "Marta Gómez", Email: "marta.lopez@uni.es"},
		{Key: "pedro", Name: "Pedro Ruiz", ID: "12345678"},
		{Key: "javier", Name: "Javier Sanz"},
	}
	m := Match(subs, students)
	got := map[string]string{}
	for k, s := range m.ByStudent {
		got[k] = s.Number + " " + m.How[k]
	}
	want := map[string]string{"ana": "1 nombre", "luis": "2 nombre (parcial)", "marta": "3 email", "pedro": "4 id"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if len(m.Unmatched) != 1 || m.Unmatched[0].Number != "5" {
		t.Errorf("unmatched = %v", m.Unmatched)
	}
}

// TestHashResized: a resized, re-encoded copy of a screenshot stays close;
// another screenshot of the same kind of window does not.
func TestHashResized(t *testing.T) {
	a, err := documentstest.Screenshot(documentstest.PM2Screenshot, 18)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := documentstest.Resize(a, 0.6)
	other, _ := documentstest.Screenshot([]string{"alumno@debian:~$ pm2 logs", "0|cluster | listening on 3001", "1|cluster | listening on 3001", "PM2 | App [cluster:1] online"}, 18)
	h := func(b []byte) DHash {
		img, err := DecodeImage(b)
		if err != nil {
			t.Fatal(err)
		}
		return HashImage(img)
	}
	ha, hs, ho := h(a), h(small), h(other)
	if d := ha.Distance(hs); d > 9 {
		t.Errorf("resized copy at distance %d, want <= 9", d)
	}
	if d := ha.Distance(ho); d <= 9 {
		t.Errorf("another screenshot at distance %d, want > 9", d)
	}
}

func TestSimilarText(t *testing.T) {
	statement := "Explica por que el servidor sin cluster obtiene a veces mejores resultados que el servidor con cluster en las pruebas de carga realizadas con loadtest sobre la ruta raiz de la aplicacion"
	shared := documentstest.AnswerPassage
	doc := func(text string) []*Document {
		return []*Document{{File: "a.pdf", Pages: []Page{{N: 1, Text: documentstest.Filler(1, 50)}, {N: 2, Text: text}}}}
	}
	works := []Work{
		{Who: "a", Name: "A", Docs: doc(documentstest.Filler(2, 80) + " " + statement + " " + shared)},
		{Who: "b", Name: "B", Docs: doc(statement + " " + documentstest.Filler(3, 80) + " " + shared + " " + documentstest.Filler(4, 30))},
		{Who: "c", Name: "C", Docs: doc(statement + " " + documentstest.Filler(5, 200))},
		{Who: "d", Name: "D", Docs: doc(documentstest.Filler(6, 200))},
	}
	pairs := Similar(works, Reference{Texts: []string{statement}}, SimilarityOptions{})
	if len(pairs) != 1 {
		t.Fatalf("pairs = %+v, want a-b only", pairs)
	}
	p := pairs[0]
	if p.A != "a" || p.B != "b" || p.Kind != "texto" || p.Words < 60 || !strings.Contains(p.Evidence, "p. 2") || !strings.Contains(p.Evidence, "nucleos") {
		t.Errorf("pair = %+v", p)
	}
}

func TestSimilarVMs(t *testing.T) {
	h := []string{"npm i -g pm2", "pm2 start app.js -i max", "loadtest -n 1000 http://localhost:3000/", "pm2 save", "pm2 startup"}
	sum := func(c string) string { return strings.Repeat(c, 64) }
	key := "ED25519 SHA256:QY2nh4WAzz2qJ5mywmYFlKYIFU8UNeCKW+0BZodxqUo"
	for _, c := range []struct {
		name string
		a, b VMPrint
		want []string // in the evidence; nil: no pair
	}{
		{"machine-id and kept history", VMPrint{MachineID: "m1", History: h}, VMPrint{MachineID: "m1", History: h}, []string{"machine-id (", "historial de shell (5 líneas)"}},
		{"host key", VMPrint{HostKeys: []string{key}}, VMPrint{HostKeys: []string{"RSA SHA256:x", key}}, []string{"la misma clave de host SSH " + key}},
		{"same history file", VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 12, sum("a"), sum("b")}}}, VMPrint{HistoryFiles: []HistorySum{{"/home/x/.bash_history", 12, sum("a"), sum("b")}}}, []string{"/root/.bash_history y /home/x/.bash_history, 12 líneas idénticas"}},
		{"same start, used after", VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 80, sum("a"), sum("b")}}}, VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 95, sum("c"), sum("b")}}}, []string{"sus 30 primeras líneas"}},
		{"short same start is no evidence", VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 20, sum("a"), sum("b")}}}, VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 25, sum("c"), sum("b")}}}, nil},
		{"short identical history is no evidence", VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 4, sum("a"), sum("a")}}}, VMPrint{HistoryFiles: []HistorySum{{"/root/.bash_history", 4, sum("a"), sum("a")}}}, nil},
		{"different VMs", VMPrint{MachineID: "m1", HostKeys: []string{key}}, VMPrint{MachineID: "m2", HostKeys: []string{"RSA SHA256:x"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			pairs := Similar([]Work{{Who: "a", VM: &c.a}, {Who: "b", VM: &c.b}, {Who: "c"}}, Reference{}, SimilarityOptions{})
			if c.want == nil {
				if len(pairs) != 0 {
					t.Errorf("pairs = %+v", pairs)
				}
				return
			}
			if len(pairs) != 1 || pairs[0].Kind != "VM" || pairs[0].A != "a" || pairs[0].B != "b" {
				t.Fatalf("pairs = %+v", pairs)
			}
			for _, w := range c.want {
				if !strings.Contains(pairs[0].Evidence, w) {
					t.Errorf("evidence %q lacks %q", pairs[0].Evidence, w)
				}
			}
			if strings.Contains(pairs[0].Evidence, "m1") {
				t.Errorf("evidence shows the machine-id itself: %q", pairs[0].Evidence)
			}
		})
	}
}

func TestSniffAndText(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, data, format string
		headings           []string
		problem            string
	}{
		{"a.md", "# Título\n\nTexto con pm2 ls.\n\n## Dos\n![Figura 1: pm2](x.png)", "md", []string{"Título", "Dos"}, ""},
		{"a.html", "<html><head><style>x{}</style></head><body><h2>Intro &amp; más</h2><p>hola<br>adios</p><figure><img src=a><figcaption>Captura del navegador</figcaption></figure></body></html>", "html", []string{"Intro & más"}, ""},
		{"a.txt", "1. Introducción\nhola\n2. Despliegue con cluster\n", "txt", []string{"1. Introducción", "2. Despliegue con cluster"}, ""},
		{"a.pdf", "en realidad texto", "txt", nil, "la extensión .pdf no corresponde"},
		{"vacio.pdf", "", "", nil, "fichero vacío"},
		{"bin.dat", "\x00\x01\x02binario", "", nil, "formato no reconocido"},
		{"roto.pdf", "%PDF-1.4\nbasura sin fin", "pdf", nil, "PDF dañado"},
		{"roto.docx", "PK\x03\x04[Content_Types].xml basura", "docx", nil, "DOCX dañado"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			os.WriteFile(p, []byte(c.data), 0o644)
			d := Extract(context.Background(), File{Name: c.name, Path: p}, ExtractOptions{})
			if d.Format != c.format {
				t.Errorf("format %q, want %q", d.Format, c.format)
			}
			var hs []string
			for _, h := range d.Headings {
				hs = append(hs, h.Text)
			}
			if d := cmp.Diff(c.headings, hs); d != "" {
				t.Errorf("headings (-want +got):\n%s", d)
			}
			probs := strings.Join(d.Problems, "\n")
			if (c.problem == "") != (probs == "") || !strings.Contains(probs, c.problem) {
				t.Errorf("problems %q, want %q", probs, c.problem)
			}
		})
	}
}

// TestEncryptedPDF: a PDF with a user password is one clear line.
func TestEncryptedPDF(t *testing.T) {
	if !HaveTool("qpdf") {
		// Without qpdf, write an encrypted PDF's trailer by hand: poppler
		// refuses it the same way.
		t.Log("qpdf not installed: using a hand-made encrypted PDF")
	}
	p := filepath.Join(t.TempDir(), "cifrado.pdf")
	os.WriteFile(p, encryptedPDF, 0o644)
	d := Extract(context.Background(), File{Name: "cifrado.pdf", Path: p}, ExtractOptions{})
	if len(d.Problems) != 1 || !(strings.Contains(d.Problems[0], "cifrado") || strings.Contains(d.Problems[0], "dañado")) {
		t.Errorf("problems = %q", d.Problems)
	}
}

// encryptedPDF is a one-page PDF with the standard security handler and a
// user password (the /Encrypt dictionary is enough for poppler to ask for
// it).
var encryptedPDF = []byte(`%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj
4 0 obj << /Filter /Standard /V 1 /R 2 /O <0000000000000000000000000000000000000000000000000000000000000000> /U <0000000000000000000000000000000000000000000000000000000000000000> /P -4 >> endobj
trailer << /Root 1 0 R /Size 5 /Encrypt 4 0 R /ID [<01020304050607080910111213141516><01020304050607080910111213141516>] >>
%%EOF
`)

// TestBadSubmissions: an empty submission, an empty file and files of 200
// MB and just over (the default limit) in a class folder: one problem line
// each, the submission graded as unreadable (never dropped), the rest of the
// class read.
func TestBadSubmissions(t *testing.T) {
	dir := t.TempDir()
	mk := func(folder, name string, size int64, data string) {
		t.Helper()
		d := filepath.Join(dir, folder)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if name == "" {
			return
		}
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			if err := os.Truncate(p, size); err != nil { // sparse: no disk used
				t.Fatal(err)
			}
		}
	}
	mk("Vacia Uno_1_assignsubmission_file_", "", 0, "")
	mk("Cero Dos_2_assignsubmission_file_", "informe.pdf", 0, "")
	mk("Justo Tres_3_assignsubmission_file_", "informe.pdf", DefaultLimits.MaxFileBytes, "%PDF-1.4\n")
	mk("Grande Cuatro_4_assignsubmission_file_", "informe.pdf", DefaultLimits.MaxFileBytes+1, "%PDF-1.4\n")
	mk("Bien Cinco_5_assignsubmission_file_", "informe.md", 0, "# Informe\n\nEl cluster reparte las peticiones entre los workers.")
	c, err := Load(context.Background(), Options{Submissions: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := map[string]struct {
		readable bool
		problem  string
	}{
		"Vacia Uno":     {false, "entrega vacía: ningún fichero"},
		"Cero Dos":      {false, "informe.pdf: fichero vacío"},
		"Justo Tres":    {false, "informe.pdf: PDF dañado o ilegible"},
		"Grande Cuatro": {false, "informe.pdf omitido"},
		"Bien Cinco":    {true, ""},
	}
	if len(c.Set.Submissions) != len(want) {
		t.Fatalf("%d submissions, want %d", len(c.Set.Submissions), len(want))
	}
	for _, s := range c.Set.Submissions {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected submission %q", s.Name)
			continue
		}
		f := c.Facts(s)
		probs := strings.Join(f.Problems, "\n")
		if !f.Submitted || f.Readable != w.readable || !strings.Contains(probs, w.problem) || (w.problem == "" && probs != "") {
			t.Errorf("%s: submitted %v, readable %v, problems %q; want readable %v and %q", s.Name, f.Submitted, f.Readable, probs, w.readable, w.problem)
		}
		if strings.Count(probs, "\n") > 1 {
			t.Errorf("%s: more than one line per problem: %q", s.Name, probs)
		}
	}
}
