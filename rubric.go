// Package deploylab holds what belongs to the repository as a whole: the
// default grading rubric (rubric.yaml), embedded so that a downloaded
// deploylab binary grades without the source tree.
package deploylab

import _ "embed"

// DefaultRubric is rubric.yaml: the practice's six criteria and ten points.
//
//go:embed rubric.yaml
var DefaultRubric []byte

// DefaultRubricName names DefaultRubric in error messages.
const DefaultRubricName = "rubric.yaml (built in)"
