package deploylab

import (
	"testing"

	"github.com/deploylab/deploylab/checks"
)

// TestDefaultRubric checks the embedded rubric parses and holds the
// practice's ten points.
func TestDefaultRubric(t *testing.T) {
	r, err := checks.ParseRubric(DefaultRubricName, DefaultRubric)
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, c := range r.Criteria {
		total += c.Points
	}
	if total != 10 || len(r.Criteria) != 6 {
		t.Errorf("default rubric: %d criteria, %v points; want 6 and 10", len(r.Criteria), total)
	}
}
