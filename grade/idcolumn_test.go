package grade

import (
	"testing"

	"github.com/deploylab/deploylab/gradebook"
)

func TestIDColumn(t *testing.T) {
	st := func(id, email string) Target { return Target{Student: gradebook.Student{ID: id, Email: email}} }
	for _, tc := range []struct {
		name    string
		setting string
		ts      []Target
		want    gradebook.IDColumn
	}{
		{"setting email", "email", []Target{st("1", "")}, gradebook.ByEmail},
		{"setting idnumber", "idnumber", []Target{st("", "a@x")}, gradebook.ByIDNumber},
		{"all have email", "", []Target{st("", "a@x"), st("2", "b@x")}, gradebook.ByEmail},
		{"one lacks email, all have id", "", []Target{st("1", "a@x"), st("2", "")}, gradebook.ByIDNumber},
		{"one lacks both", "", []Target{st("1", "a@x"), st("", "")}, gradebook.ByEmail},
		{"no students", "", nil, gradebook.ByEmail},
	} {
		if got := IDColumn(tc.setting, tc.ts); got != tc.want {
			t.Errorf("%s: IDColumn = %v, want %v", tc.name, got, tc.want)
		}
	}
}
