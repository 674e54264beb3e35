package checks

import "testing"

func TestWords(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{nouns(1, "instancia", "instancias"), "1 instancia"},
		{nouns(0, "instancia", "instancias"), "0 instancias"},
		{nouns(2, "orden", "órdenes"), "2 órdenes"},
		{expected("al menos", 1), "se esperaba al menos 1"},
		{expected("como mucho", 4), "se esperaban como mucho 4"},
		{countWords(Count{CPUs: true}), "una por CPU"},
		{countWords(Count{CPUs: true, N: -1}), "una por CPU menos una"},
		{countWords(Count{CPUs: true, N: -2}), "una por CPU menos 2"},
		{countWords(Count{N: 4}), "lo pedido: 4"},
		// a check's name in the middle of Detalle's sentence
		{midSentence("El historial muestra una sola prueba de carga"), "el historial muestra una sola prueba de carga"},
		{midSentence("PM2 tiene guardada la aplicación"), "PM2 tiene guardada la aplicación"},
		{midSentence("GET / responde"), "GET / responde"},
		{midSentence("el historial"), "el historial"},
		{midSentence("Ñandú"), "ñandú"},
		{midSentence(""), ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
