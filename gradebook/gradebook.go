// Package gradebook writes what `deploylab grade` found: the teacher's
// spreadsheet notas.xlsx (sheets Notas, Detalle, Bench and Rúbrica, written
// atomically, keeping the manual marks and comments of a previous run), a
// gradebook CSV in Moodle's import shape, and a feedback text per student.
// It knows only checks.Rubric and checks.Scorecard.
package gradebook

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
)

// Student identifies a row: who and which host.
type Student struct {
	Name  string
	ID    string // id number in the school's gradebook
	Email string
	Host  string
}

// Key is how a student's row is found again on a re-grade: the email, else
// the id, else the host (case-insensitive).
func (s Student) Key() string {
	for _, k := range []string{s.Email, s.ID, s.Host} {
		if k = strings.TrimSpace(k); k != "" {
			return strings.ToLower(k)
		}
	}
	return strings.ToLower(s.Name)
}

// Row is one student's grade.
type Row struct {
	Student
	Scorecard checks.Scorecard
}

// Manual is what the teacher typed in the sheet for one student: marks of the
// manual criteria (by criterion ID) and a comment.
type Manual struct {
	Marks   map[string]float64
	Comment string
	// Overrides are marks the teacher typed over automatic scores, by
	// criterion ID: they win over the automatic score.
	Overrides map[string]Override
	// Invalid are typed marks that are not marks (NaN, negative, above the
	// criterion's points), by criterion ID, as typed: flagged, never summed.
	Invalid map[string]string
	// Extra are the values of the teacher's own columns, by header.
	Extra map[string]string
}

// Override is a mark typed over an automatic score.
type Override struct {
	Mark    float64
	Auto    float64 // the automatic score it replaced
	HadAuto bool    // false when there was none (the host was unreachable)
}

// CheckWritable fails before any host is visited when path cannot be
// written: its directory is missing or read-only, the old file is open in
// LibreOffice or Excel (a lock file is present), or the old file cannot be
// read as a spreadsheet (its manual marks would be lost). Errors are
// fail.Usage with a hint.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fail.New(fail.Usage, "create the directory or choose another --out", fmt.Errorf("output directory %s: %w", dir, err))
	}
	if !st.IsDir() {
		return fail.Errorf(fail.Usage, "choose another --out", "output directory %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".deploylab-write-test-*")
	if err != nil {
		return fail.New(fail.Usage, "choose a writable --out", fmt.Errorf("cannot write in %s: %w", dir, err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if err := checkLock(path); err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fail.Errorf(fail.Usage, "choose another --out", "%s is a directory", path)
		}
		if strings.EqualFold(filepath.Ext(path), ".xlsx") {
			x, err := openOld(path)
			if err != nil {
				return err
			}
			x.Close()
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail.New(fail.Usage, "choose another --out", fmt.Errorf("output %s: %w", path, err))
	}
	return nil
}

// lockFiles are the lock files office suites keep next to an open file.
func lockFiles(path string) []string {
	dir, base := filepath.Split(path)
	return []string{
		filepath.Join(dir, ".~lock."+base+"#"), // LibreOffice
		filepath.Join(dir, "~$"+base),          // Excel
	}
}

func checkLock(path string) error {
	for _, l := range lockFiles(path) {
		if _, err := os.Stat(l); err == nil {
			return fail.Errorf(fail.Usage, "close the spreadsheet (or delete "+filepath.Base(l)+" if no one has it open) and run again",
				"%s is open in a spreadsheet application (lock file %s): the marks typed there would be lost", path, l)
		}
	}
	return nil
}

// writeAtomic writes via a temp file in the same directory, then renames.
func writeAtomic(path string, write func(*os.File) error) error {
	return writeAtomicMode(path, 0o644, write)
}

// copyFile copies src to dst (replacing it) with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomicMode(dst, mode, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// writeAtomicMode is writeAtomic giving the file mode.
func writeAtomicMode(path string, mode os.FileMode, write func(*os.File) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// fmtScore prints a score the way the sheet and the CSV do: up to two
// decimals, a dot, no trailing zeros.
func fmtScore(v float64) string {
	return strconv.FormatFloat(float64(int64(v*100+0.5*sign(v)))/100, 'f', -1, 64)
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// criterionScore returns the score of criterion c for a row: the automatic
// score or the teacher's mark; ok is false when there is none yet.
func criterionScore(c checks.Criterion, cr *checks.CriterionResult, m Manual) (float64, bool) {
	if _, bad := m.Invalid[c.ID]; bad {
		return 0, false
	}
	if o, ok := m.Overrides[c.ID]; ok {
		return o.Mark, true
	}
	if c.Manual {
		v, ok := m.Marks[c.ID]
		if !ok && cr != nil && cr.Scored && cr.Suggested {
			// deploylab's suggestion from the document, until the teacher
			// types a mark.
			return cr.Score, true
		}
		return v, ok
	}
	if cr == nil || !cr.Scored {
		return 0, false
	}
	return cr.Score, true
}

func findResult(rep checks.Scorecard, id string) *checks.CriterionResult {
	for i := range rep.Criteria {
		if rep.Criteria[i].ID == id {
			return &rep.Criteria[i]
		}
	}
	return nil
}
