package render

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/atomicfile"
)

// The class report of deploylab grade (--html clase.html): the marks of each
// criterion as a distribution, the class table with one coloured cell per
// criterion that opens the evidence, and one page per student saying what
// passed, what failed, why and how to fix it. Everything a VM said (evidence,
// reasons) is text: html/template escapes it.

// Cell states.
const (
	CellPass    = "pass"    // every check passed: full marks
	CellPartial = "partial" // some passed
	CellFail    = "fail"    // none passed
	CellError   = "error"   // could not be checked (host down, check failed to run)
	CellManual  = "manual"  // the teacher's mark
	CellPending = "pending" // a manual criterion not marked yet
)

var cellWords = map[string]string{
	CellPass: "superado", CellPartial: "parcial", CellFail: "no superado",
	CellError: "sin comprobar", CellManual: "nota del profesor", CellPending: "pendiente",
}

var cellColours = map[string]string{
	CellPass: "#2ca02c", CellPartial: "#e6b800", CellFail: "#d62728", CellError: "#8c8c8c", CellManual: "#1f77b4", CellPending: "#cccccc",
}

// ClassOptions say what a class report shows besides the grades.
type ClassOptions struct {
	Title     string // "" means the rubric's title
	Version   string
	Generated time.Time
}

// ClassReport is the laid-out class report.
type ClassReport struct {
	Title, Version, Generated string
	Criteria                  []classCriterion
	Students                  []classStudent
	Charts                    []Chart
	MaxTotal                  string
}

type classCriterion struct {
	ID, Name, Points string
	Manual           bool
}

type classStudent struct {
	Anchor, Name, Host, Email string
	Reachable                 bool
	Reason                    string
	Total                     string
	Pending                   bool
	Cells                     []classCell
	Comment                   string
}

type classCell struct {
	State, Word, Score, Points, Anchor, Name, Question string
	Checks                                             []classCheck
	Review                                             bool
}

type classCheck struct {
	Name, Outcome, Word, Reason, Evidence, Fix string
}

// cellOf classifies one criterion of one student.
func cellOf(c checks.Criterion, cr *checks.CriterionResult, m gradebook.Manual, reachable bool) (string, float64, bool) {
	if c.Manual {
		if v, ok := m.Marks[c.ID]; ok {
			return CellManual, v, true
		}
		return CellPending, 0, false
	}
	if !reachable || cr == nil || !cr.Scored {
		return CellError, 0, false
	}
	switch {
	case cr.Score >= c.Points-1e-9:
		return CellPass, cr.Score, true
	case cr.Score <= 1e-9:
		return CellFail, cr.Score, true
	}
	return CellPartial, cr.Score, true
}

func fmtMark(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

// BuildClass lays out the class report of rows graded against r, with the
// teacher's manual marks (by gradebook.Student.Key; may be nil).
func BuildClass(r *checks.Rubric, rows []gradebook.Row, manual map[string]gradebook.Manual, o ClassOptions) *ClassReport {
	rep := &ClassReport{Title: o.Title, Version: o.Version}
	if rep.Title == "" {
		rep.Title = r.Title
	}
	if rep.Title == "" {
		rep.Title = "Práctica"
	}
	if !o.Generated.IsZero() {
		rep.Generated = o.Generated.UTC().Format("2006-01-02 15:04 UTC")
	}
	maxTotal := 0.0
	for _, c := range r.Criteria {
		rep.Criteria = append(rep.Criteria, classCriterion{ID: c.ID, Name: c.Name, Points: fmtMark(c.Points), Manual: c.Manual})
		maxTotal += c.Points
	}
	rep.MaxTotal = fmtMark(maxTotal)
	var totals []float64
	for i, row := range rows {
		m := manual[row.Key()]
		sc := row.Scorecard
		st := classStudent{Anchor: fmt.Sprintf("s%d", i+1), Name: row.Name, Host: row.Host, Email: row.Email,
			Reachable: sc.Reachable, Reason: sc.Reason, Comment: m.Comment}
		if st.Name == "" {
			st.Name = row.Host
		}
		total := 0.0
		for _, c := range r.Criteria {
			var cr *checks.CriterionResult
			for k := range sc.Criteria {
				if sc.Criteria[k].ID == c.ID {
					cr = &sc.Criteria[k]
				}
			}
			state, v, ok := cellOf(c, cr, m, sc.Reachable)
			cell := classCell{State: state, Word: cellWords[state], Points: fmtMark(c.Points), Anchor: st.Anchor + "-" + c.ID, Name: c.Name, Question: c.Question}
			if ok {
				cell.Score = fmtMark(v)
				total += v
			} else {
				st.Pending = true
			}
			if cr != nil {
				cell.Review = cr.NeedsReview
				for _, ch := range cr.Checks {
					name := ch.Name
					if name == "" {
						name = ch.ID
					}
					cc := classCheck{Name: name, Outcome: string(ch.Outcome), Word: outcomeWord(ch.Outcome), Reason: ch.Reason, Evidence: ch.Evidence}
					if ch.Partial() {
						cc.Outcome, cc.Word = "partial", "parcial"
					}
					if ch.Outcome == checks.Fail || ch.Outcome == checks.Error {
						cc.Fix = fixFor(ch)
					}
					cell.Checks = append(cell.Checks, cc)
				}
			}
			st.Cells = append(st.Cells, cell)
		}
		st.Total = fmtMark(total)
		totals = append(totals, total)
		rep.Students = append(rep.Students, st)
	}
	rep.Charts = append(rep.Charts, criterionChart(rep), totalsChart(totals, maxTotal))
	return rep
}

func outcomeWord(o checks.Outcome) string {
	switch o {
	case checks.Pass:
		return "superada"
	case checks.Fail:
		return "no superada"
	case checks.Skip:
		return "omitida"
	}
	return "sin comprobar"
}

// fixFor says how to fix a check that did not pass, by its kind: the
// practice's commands.
func fixFor(ch checks.Result) string {
	if ch.Outcome == checks.Error {
		return "No se pudo comprobar: revisa que la máquina esté encendida y accesible por SSH, y vuelve a pedir la corrección."
	}
	switch ch.Kind {
	case checks.KindHTTP:
		return "Comprueba desde la propia máquina que la aplicación responde: curl -i http://localhost:PUERTO/ (y /api/50). Si no responde, arráncala y mira sus registros (pm2 logs)."
	case checks.KindPort:
		return "Mira qué escucha en el puerto: sudo ss -ltnp. El servidor en clúster debe tener varios procesos (uno por CPU: os.availableParallelism() o instances: max en PM2)."
	case checks.KindProcess:
		return "El proceso no está en marcha: arráncalo (node app.js, o mejor con PM2: pm2 start) y compruébalo con ps aux."
	case checks.KindFile:
		return "Falta el fichero o no tiene lo que se pide: revisa su ruta y su contenido."
	case checks.KindCommand:
		return "Ejecuta tú mismo la orden en la máquina y corrige lo que indique su salida."
	case checks.KindSystemd:
		return "PM2 debe arrancar con la máquina: pm2 startup (y ejecuta la orden que imprime con sudo), luego pm2 save."
	case checks.KindPM2:
		return "Arranca la app en modo clúster con PM2 (pm2 start app.js -i max, o un ecosystem.config.js con exec_mode: \"cluster\") y guarda la lista: pm2 save."
	case checks.KindTool:
		return "Instala la herramienta en la máquina: sudo npm install -g loadtest (o pm2)."
	case checks.KindHistory:
		return "Haz en la máquina las pruebas que pide la práctica (por ejemplo loadtest -n 1000 -c 100 http://localhost:3000/api/500000) y déjalas en el historial."
	case checks.KindBench:
		return "Mide los dos servidores con la misma carga (deploylab bench, o loadtest contra cada puerto) y explica el resultado: con pocas CPU o una ruta ligera, el clúster puede no ganar."
	case checks.KindBlocking:
		return "Con un solo proceso, una petición pesada bloquea a las demás: usa el clúster (varios procesos) para que las peticiones ligeras se atiendan mientras tanto."
	case checks.KindRespawn:
		return "Si un proceso muere, el clúster debe levantar otro: escucha el evento exit del master (cluster.on('exit', () => cluster.fork())) o usa PM2."
	case checks.KindReload:
		return "Recarga sin cortar el servicio: pm2 reload en modo clúster, no pm2 restart."
	}
	return "Revisa lo que pide este apartado de la práctica."
}

// criterionChart: for each criterion, how many students passed, partly
// passed, failed or could not be checked: one stacked bar per criterion.
func criterionChart(rep *ClassReport) Chart {
	title := "Resultado por criterio"
	states := []string{CellPass, CellPartial, CellFail, CellError, CellManual, CellPending}
	n := len(rep.Students)
	rowH := 26.0
	top, labelW := 48.0, 210.0
	h := top + rowH*float64(len(rep.Criteria)) + 70
	pw := chartW - labelW - plotR
	s := newSVG(chartW, h, "criteria", title)
	xOf := func(k float64) float64 { return labelW + pw*k/math.Max(float64(n), 1) }
	s.open("g", "class", "axis", "data-axis", "x", "data-min", "0", "data-max", strconv.Itoa(n), "data-zero-x", num(xOf(0)))
	_, step := niceMax(float64(max(n, 1)))
	for k := 0.0; k <= float64(n)+1e-9; k += math.Max(1, step) {
		x := xOf(k)
		s.line(x, top-4, x, top+rowH*float64(len(rep.Criteria)), colGrid)
		s.text(x, top+rowH*float64(len(rep.Criteria))+16, "middle", fmtTick(k), "class", "tick")
	}
	s.close("g")
	for i, c := range rep.Criteria {
		y := top + rowH*float64(i)
		name := c.Name
		if len([]rune(name)) > 30 {
			name = string([]rune(name)[:29]) + "…"
		}
		s.text(labelW-6, y+17, "end", name)
		count := map[string]int{}
		for _, st := range rep.Students {
			count[st.Cells[i].State]++
		}
		x := 0.0
		for _, state := range states {
			if count[state] == 0 {
				continue
			}
			w := float64(count[state])
			s.rect(xOf(x), y+4, xOf(x+w)-xOf(x), rowH-8, cellColours[state], "class", "bar seg", "data-value", strconv.Itoa(count[state]), "data-state", state, "data-series", c.ID)
			if xOf(x+w)-xOf(x) > 16 {
				s.text((xOf(x)+xOf(x+w))/2, y+17, "middle", strconv.Itoa(count[state]), "fill", "#fff", "font-weight", "bold", "font-size", "11")
			}
			x += w
		}
	}
	var names, cols []string
	for _, st := range states {
		names, cols = append(names, cellWords[st]), append(cols, cellColours[st])
	}
	s.legend(8, h-12, names, cols)
	s.text(labelW+pw/2, top+rowH*float64(len(rep.Criteria))+34, "middle", "alumnos", "fill", colMuted)
	return Chart{Name: "clase-criterios", Kind: "criteria", Title: title, SVG: s.String()}
}

// totalsChart: the distribution of the total marks, one bar per mark band
// (each a tenth of the maximum), from 0.
func totalsChart(totals []float64, maxTotal float64) Chart {
	title := "Distribución de las notas (automáticas y del profesor)"
	const bands = 10
	counts := make([]int, bands)
	for _, t := range totals {
		k := 0
		if maxTotal > 0 {
			k = int(t / maxTotal * bands)
		}
		counts[min(max(k, 0), bands-1)]++
	}
	vmax := 0.0
	for _, c := range counts {
		vmax = max(vmax, float64(c))
	}
	const h = 300.0
	top, ph := 50.0, h-50-56
	pw := chartW - plotL - plotR
	s := newSVG(chartW, h, "marks", title)
	p := s.valueAxis(plotL, top, pw, ph, max(vmax, 1), "alumnos")
	slot := pw / bands
	for i, c := range counts {
		x := plotL + slot*float64(i) + slot*0.1
		y := p.y(float64(c))
		lo, hi := maxTotal*float64(i)/bands, maxTotal*float64(i+1)/bands
		label := fmt.Sprintf("%s–%s", fmtMark(lo), fmtMark(hi))
		s.rect(x, y, slot*0.8, p.y(0)-y, "#1f77b4", "class", "bar", "data-value", strconv.Itoa(c), "data-series", label)
		if c > 0 {
			s.text(x+slot*0.4, y-5, "middle", strconv.Itoa(c), "class", "value")
		}
		s.text(x+slot*0.4, top+ph+16, "middle", label, "class", "category", "font-size", "10")
	}
	s.text(plotL+pw/2, h-14, "middle", "nota sobre "+fmtMark(maxTotal), "fill", colMuted)
	return Chart{Name: "clase-notas", Kind: "marks", Title: title, SVG: s.String()}
}

// WriteHTML writes the class report as one self-contained page.
func (c *ClassReport) WriteHTML(w io.Writer) error {
	return classTmpl.ExecuteTemplate(w, "class", c)
}

// WriteFile writes the class report to path atomically.
func (c *ClassReport) WriteFile(path string) error {
	var b strings.Builder
	if err := c.WriteHTML(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}

// WriteStudentHTML writes student i's page alone (deploylab grade
// --feedback writes one per student, beside the text).
func (c *ClassReport) WriteStudentHTML(w io.Writer, i int) error {
	return classTmpl.ExecuteTemplate(w, "studentpage", map[string]any{"R": c, "S": c.Students[i]})
}

var classTmpl = template.Must(template.New("root").Funcs(template.FuncMap{"svg": svgHTML, "colour": func(s string) template.CSS {
	return template.CSS("background:" + cellColours[s]) //nolint:gosec // from a fixed table
}}).Parse(pageCSS + classPage))

const classPage = `{{define "head"}}<!DOCTYPE html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}}</title>
<link rel="icon" href="data:,">
<style>{{template "css"}}
td.cell { text-align: center; color: #fff; font-weight: bold; min-width: 64px; }
td.cell a { color: #fff; text-decoration: none; display: block; }
td.cell.cell-partial a, td.cell.cell-pending a { color: #222; }
.student h3 { border-bottom: 1px solid #ccc; }
.check { margin: 4px 0 4px 12px; font-size: 13px; }
.check .o-pass { color: #2ca02c; font-weight: bold; } .check .o-fail { color: #d62728; font-weight: bold; } .check .o-partial { color: #b38f00; font-weight: bold; } .check .o-error, .check .o-skip { color: #666; font-weight: bold; }
.evidence { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; background: #f6f6f6; padding: 2px 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
.fix { color: #1f4e79; }
.criterion:target { outline: 3px solid #1f77b4; }
</style>
</head>
<body>
{{end}}{{define "class"}}{{template "head" .Title}}<main id="report">
<header><h1>{{.Title}}</h1><p class="meta">Informe de la clase{{if .Generated}} · {{.Generated}}{{end}}{{if .Version}} · {{.Version}}{{end}}</p></header>
<div class="charts">{{range .Charts}}<figure class="chart" data-kind="{{.Kind}}" data-name="{{.Name}}">{{svg .}}</figure>
{{end}}</div>
<h2>La clase</h2>
<table class="figures class">
<thead><tr><th>alumno</th><th>host</th>{{range .Criteria}}<th title="{{.Name}}">{{.Name}}<br><small>/{{.Points}}</small></th>{{end}}<th>total /{{.MaxTotal}}</th></tr></thead>
<tbody>{{range .Students}}<tr data-student="{{.Anchor}}"><td><a href="#{{.Anchor}}">{{.Name}}</a></td><td>{{.Host}}</td>{{range .Cells}}<td class="cell cell-{{.State}}" data-state="{{.State}}" style="{{colour .State}}"><a href="#{{.Anchor}}" title="{{.Name}}: {{.Word}}">{{if .Score}}{{.Score}}{{else}}–{{end}}</a></td>{{end}}<td>{{.Total}}{{if .Pending}}*{{end}}</td></tr>
{{end}}</tbody>
</table>
<p class="note">Colores: <span style="{{colour "pass"}};color:#fff">&nbsp;superado&nbsp;</span> <span style="{{colour "partial"}}">&nbsp;parcial&nbsp;</span> <span style="{{colour "fail"}};color:#fff">&nbsp;no superado&nbsp;</span> <span style="{{colour "error"}};color:#fff">&nbsp;sin comprobar&nbsp;</span> <span style="{{colour "manual"}};color:#fff">&nbsp;nota del profesor&nbsp;</span> <span style="{{colour "pending"}}">&nbsp;pendiente&nbsp;</span>. Cada celda abre lo observado. * nota provisional: faltan criterios por calificar.</p>
{{range .Students}}{{template "student" .}}{{end}}
<footer><p>Hecho por {{if .Version}}{{.Version}}{{else}}deploylab{{end}} (deploylab grade). Lo observado en cada máquina se muestra como texto.</p></footer>
</main>
</body>
</html>
{{end}}{{define "student"}}<section class="student" id="{{.Anchor}}">
<h2>{{.Name}}</h2>
<p class="facts">Host: {{.Host}}{{if .Email}} · {{.Email}}{{end}} · nota{{if .Pending}} provisional{{end}}: <strong>{{.Total}}</strong></p>
{{if not .Reachable}}<p class="diagnosis">No se pudo acceder a la máquina: {{.Reason}}. Las comprobaciones automáticas quedan pendientes de revisión.</p>{{end}}
{{range .Cells}}<div class="criterion" id="{{.Anchor}}" data-state="{{.State}}">
<h3><span class="cell-{{.State}}" style="{{colour .State}};color:#fff;padding:0 6px">{{.Word}}</span> {{.Name}}: {{if .Score}}{{.Score}}{{else}}–{{end}} de {{.Points}}</h3>
{{if .Question}}<p class="note">Pregunta: {{.Question}}</p>{{end}}
{{if .Review}}<p class="note">Alguna comprobación no se pudo hacer: el profesor la revisará.</p>{{end}}
{{range .Checks}}<div class="check"><span class="o-{{.Outcome}}">{{.Word}}</span> {{.Name}}
{{if .Reason}}<div>por qué: {{.Reason}}</div>{{end}}
{{if .Evidence}}<div>observado: <span class="evidence">{{.Evidence}}</span></div>{{end}}
{{if .Fix}}<div class="fix">cómo arreglarlo: {{.Fix}}</div>{{end}}
</div>
{{end}}</div>
{{end}}{{if .Comment}}<p>Comentario del profesor: {{.Comment}}</p>{{end}}
</section>
{{end}}{{define "studentpage"}}{{template "head" .S.Name}}<main id="report">
<header><h1>{{.R.Title}}</h1><p class="meta">{{if .R.Generated}}{{.R.Generated}} · {{end}}{{if .R.Version}}{{.R.Version}}{{end}}</p></header>
{{template "student" .S}}
</main>
</body>
</html>
{{end}}`
