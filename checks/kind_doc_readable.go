package checks

import "fmt"

// KindDocReadable: the document has a readable text layer (not a scan).
const KindDocReadable Kind = "doc_readable"

func init() {
	registerDoc(KindDocReadable, "the document has a readable text layer (not a scan or a document printed as pictures)", func() Params { return &docReadableCheck{} })
}

type docReadableCheck struct{}

func (*docReadableCheck) decode(*decoder)            {}
func (*docReadableCheck) describe(func(k, v string)) {}

func (*docReadableCheck) eval(e *env, _ *Check) Result {
	d := e.doc
	ev := fmt.Sprintf("%d palabras con capa de texto", d.Words)
	if d.OCRPages > 0 {
		ev += fmt.Sprintf("; %d páginas escaneadas leídas con OCR", d.OCRPages)
	}
	if !d.TextLayer {
		return failed(ev, "el documento no tiene capa de texto (escaneado o impreso como imagen)")
	}
	if d.OCRPages > 0 {
		return failed(ev, "parte del documento está escaneada")
	}
	return pass(ev)
}
