package documentstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Filler returns n words of Spanish-looking prose that no other seed
// produces (so filler never looks copied).
func Filler(seed uint64, n int) string {
	words := []string{"el", "servidor", "responde", "la", "aplicacion", "proceso", "despues", "configuramos", "observamos",
		"memoria", "sistema", "maquina", "virtual", "puerto", "navegador", "resultado", "prueba", "comando", "terminal",
		"fichero", "paquete", "instalacion", "usuario", "carpeta", "version", "modulo", "cambio", "tiempo", "medida",
		"valor", "tabla", "paso", "forma", "manera", "nuevo", "primero", "segundo", "luego", "tambien", "ademas",
		"entonces", "vemos", "queda", "funciona", "correcto", "sencillo", "practica", "apartado", "informe", "grafica"}
	r := rand.New(rand.NewPCG(seed, seed*7919+1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			if i%14 == 0 {
				b.WriteString(". ")
			} else {
				b.WriteString(" ")
			}
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	b.WriteString(".")
	return b.String()
}

// TemplateHeadings are the sections of the class's template.
var TemplateHeadings = []string{"Introducción", "Despliegue sin cluster", "Despliegue con cluster", "Pruebas de carga", "Gestor de procesos PM2", "Preguntas"}

// Student of the synthetic class.
type Student struct {
	Name  string
	Email string
}

// Fixture is a synthetic class: the students (for an inventory), Moodle's
// zip of their submissions and the template.
type Fixture struct {
	Students    []Student
	Zip         string
	Template    string
	Screenshots map[string][]byte // by name
}

// The synthetic class:
//
//   - Ana García: a complete report (DOCX converted to PDF): code, curl
//     answer, cluster, loadtest figures, pm2 ls only in a screenshot, the
//     answers to the questions, every template section, captions.
//   - Luis Pérez: copied from Ana (ODT converted to PDF): her answer
//     passage word for word and her pm2 ls screenshot resized to 80%.
//   - Marta López: a short DOCX (handed in as .docx): no screenshots, no
//     answers.
//   - Pedro Ruiz: a DOCX named informe.pdf (wrong extension).
//   - Sofía Díaz: an old binary .doc (unreadable format).
//   - Javier Sanz: no submission.
//   - a folder no student matches ("Alumno Desconocido").
const (
	Ana    = "Ana García"
	Luis   = "Luis Pérez"
	Marta  = "Marta López"
	Pedro  = "Pedro Ruiz"
	Sofia  = "Sofía Díaz"
	Javier = "Javier Sanz"
)

// AnswerPassage is Ana's answer to "why does the single server sometimes
// win", which Luis copies.
const AnswerPassage = "El servidor sin cluster gana en algunas pruebas porque las peticiones a la ruta raiz son muy ligeras y necesitan poca CPU, " +
	"de modo que el coste del proceso maestro, la comunicacion IPC y el reparto round robin entre workers pesa mas que lo que aporta el paralelismo. " +
	"Ademas loadtest se ejecuta en la misma maquina virtual y consume CPU que el servidor necesita, y con solo dos nucleos no queda procesador libre para los workers."

// PM2Answer explains pm2 ls, logs and monit.
const PM2Answer = "El comando pm2 ls muestra la lista de procesos con su estado, modo cluster, reinicios, CPU y memoria; sirve para ver si la app esta online. " +
	"pm2 logs muestra la salida y los errores de la aplicacion en tiempo real y sirve para depurar. " +
	"pm2 monit es un monitor en tiempo real del consumo de CPU y memoria de cada proceso."

// PM2Screenshot is the text of the pm2 ls screenshot (Ana's, copied by
// Luis).
var PM2Screenshot = []string{
	"alumno@debian:~$ pm2 ls",
	"| id | name    | mode    | pid   | status | cpu | mem    |",
	"| 0  | cluster | cluster | 40213 | online | 0%  | 52.1mb |",
	"| 1  | cluster | cluster | 40220 | online | 0%  | 51.8mb |",
}

// Build writes the class into dir (LibreOffice converts two documents to
// PDF).
func Build(ctx context.Context, dir string) (*Fixture, error) {
	fx := &Fixture{Screenshots: map[string][]byte{}}
	shot := func(name string, lines []string) ([]byte, error) {
		p, err := Screenshot(lines, 18)
		fx.Screenshots[name] = p
		return p, err
	}
	pm2, err := shot("pm2", PM2Screenshot)
	if err != nil {
		return nil, err
	}
	curlA, err := shot("curl-ana", []string{"alumno@debian:~$ curl localhost:3000/api/50", "Final count is 1275"})
	if err != nil {
		return nil, err
	}
	loadA, err := shot("loadtest-ana", []string{"$ loadtest -n 1000 -c 100 http://localhost:3000/api/500000", "Requests per second: 951", "Mean latency: 98.2 ms"})
	if err != nil {
		return nil, err
	}
	curlL, err := shot("curl-luis", []string{"luis@vm:~$ curl -s localhost:3001/", "Hello World!"})
	if err != nil {
		return nil, err
	}
	pm2Small, err := Resize(pm2, 0.8)
	if err != nil {
		return nil, err
	}
	fx.Screenshots["pm2-resized"] = pm2Small

	ana := Spec{Title: "Práctica: Node.js, cluster y PM2", Sections: []Section{
		{Heading: "Introducción", Paras: []string{"Objetivo de la practica: desplegar una aplicacion Express con y sin cluster, medir su rendimiento con loadtest y gestionarla con PM2.", Filler(1, 120)}},
		{Heading: "Despliegue sin cluster", Paras: []string{
			"El servidor usa const app = express() y app.get('/api/:n', ...) y escucha con app.listen(3000). Lo arrancamos con node app.js en el puerto 3000.",
			Filler(2, 120)},
			Shots: []Shot{{PNG: curlA, Caption: "Figura 1: curl a /api/50 devuelve la suma"}}},
		{Heading: "Despliegue con cluster", PageBreak: true, Paras: []string{
			"La version con cluster comprueba cluster.isPrimary y llama a cluster.fork() una vez por CPU con os.availableParallelism(); cada worker 40213 escucha en el puerto 3001.",
			Filler(3, 120)}},
		{Heading: "Pruebas de carga", Paras: []string{
			"Ejecutamos loadtest -n 1000 -c 100 http://localhost:3000/api/500000 contra los dos servidores.",
			"Sin cluster obtuvimos 951 requests per second y con cluster 1024 requests per second, con una latencia media menor en cluster.",
			Filler(4, 100)},
			Shots: []Shot{{PNG: loadA, Caption: "Figura 2: loadtest contra el servidor sin cluster"}}},
		{Heading: "Gestor de procesos PM2", PageBreak: true, Paras: []string{
			"Creamos ecosystem.config.js con exec_mode cluster e instances max, y probamos pm2 reload sin perder peticiones.", Filler(5, 80)},
			Shots: []Shot{{PNG: pm2, Caption: "Figura 3: la aplicacion en modo cluster"}}},
		{Heading: "Preguntas", Paras: []string{AnswerPassage, PM2Answer}},
	}}
	luis := Spec{Title: "Practica Node", Sections: []Section{
		{Heading: "Introducción", Paras: []string{Filler(11, 150)}},
		{Heading: "Despliegue sin cluster", Paras: []string{"Arranque con node server.js y require('express').", Filler(12, 100)},
			Shots: []Shot{{PNG: curlL, Caption: "Figura 1: respuesta de la app"}}},
		{Heading: "Despliegue con cluster", PageBreak: true, Paras: []string{"Uso cluster.fork() para cada CPU.", Filler(13, 100)}},
		{Heading: "Gestor de procesos PM2", Paras: []string{Filler(14, 80)},
			Shots: []Shot{{PNG: pm2Small, Caption: "Figura 2: pm2 ls"}}},
		{Heading: "Preguntas", PageBreak: true, Paras: []string{AnswerPassage}},
	}}
	marta := Spec{Title: "Entrega", Sections: []Section{
		{Heading: "Introducción", Paras: []string{Filler(21, 60)}},
		{Heading: "Despliegue sin cluster", Paras: []string{"Lo lance con node index.js.", Filler(22, 40)}},
	}}
	pedro := Spec{Title: "Informe de Pedro", Sections: []Section{
		{Heading: "Introducción", Paras: []string{Filler(31, 80)}},
		{Heading: "Pruebas de carga", Paras: []string{"loadtest -c 10 -n 100 http://localhost:3000/", Filler(32, 80)}},
	}}
	tmpl := Spec{Title: "Plantilla de la práctica"}
	for _, h := range TemplateHeadings {
		tmpl.Sections = append(tmpl.Sections, Section{Heading: h, Paras: []string{"Escribe aqui tu respuesta a este apartado de la practica."}})
	}

	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return nil, err
	}
	write := func(name string, f func(string, Spec) error, s Spec) (string, error) {
		p := filepath.Join(src, name)
		return p, f(p, s)
	}
	anaDocx, err := write("ana.docx", WriteDOCX, ana)
	if err != nil {
		return nil, err
	}
	luisOdt, err := write("luis.odt", WriteODT, luis)
	if err != nil {
		return nil, err
	}
	martaDocx, err := write("marta.docx", WriteDOCX, marta)
	if err != nil {
		return nil, err
	}
	pedroDocx, err := write("pedro.docx", WriteDOCX, pedro)
	if err != nil {
		return nil, err
	}
	fx.Template, err = write("plantilla.docx", WriteDOCX, tmpl)
	if err != nil {
		return nil, err
	}
	if err := ToPDF(ctx, src, anaDocx, luisOdt); err != nil {
		return nil, err
	}
	read := func(p string) []byte {
		b, e := os.ReadFile(p)
		if e != nil && err == nil {
			err = e
		}
		return b
	}
	entries := []Entry{
		{Student: Ana, Number: 101, Name: "practica_ana.pdf", Data: read(filepath.Join(src, "ana.pdf"))},
		{Student: Luis, Number: 102, Name: "informe.pdf", Data: read(filepath.Join(src, "luis.pdf"))},
		{Student: "LÓPEZ marta", Number: 103, Name: "marta.docx", Data: read(martaDocx)},
		{Student: Pedro, Number: 104, Name: "informe.pdf", Data: read(pedroDocx)},
		{Student: Sofia, Number: 105, Name: "practica.doc", Data: append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 600)...)},
		{Student: "Alumno Desconocido", Number: 199, Name: "x.txt", Data: []byte("nada que ver")},
	}
	if err != nil {
		return nil, err
	}
	fx.Zip = filepath.Join(dir, "entregas.zip")
	if err := MoodleZip(fx.Zip, entries); err != nil {
		return nil, err
	}
	for _, n := range []string{Ana, Luis, Marta, Pedro, Sofia, Javier} {
		local := strings.ToLower(strings.Fields(n)[0])
		local = strings.NewReplacer("í", "i", "á", "a").Replace(local)
		fx.Students = append(fx.Students, Student{Name: n, Email: fmt.Sprintf("%s@uni.es", local)})
	}
	return fx, nil
}
