package checks

import (
	"fmt"
	"strconv"
)

// Words of the sentences a student reads in Detalle: numbers agree with
// their nouns ("1 instancia", "2 instancias").

// nouns writes n and its noun, singular or plural by n.
func nouns(n int, one, many string) string {
	return strconv.Itoa(n) + " " + plural(n, one, many)
}

// plural is one or many by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// expected writes "se esperaba al menos 1" / "se esperaban al menos 2"
// (bound is "al menos", "como mucho"…).
func expected(bound string, n int) string {
	return fmt.Sprintf("se %s %s %d", plural(n, "esperaba", "esperaban"), bound, n)
}
