package grade

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/deploylab/deploylab/gradebook"
)

// A journal keeps each host's row on disk as soon as the host is graded, so
// that a crash or a kill during a long grading loses no finished host: the
// next run over the same --out takes the journal's row for each host it
// does not finish itself. It is one JSON line per host, appended with one
// write and synced; a torn last line (the crash happened mid-write) is
// ignored. It lives next to the sheet (.notas.xlsx.journal) and is removed
// once the sheet is written.

const journalSchema = "deploylab.grade-journal/v1"

// JournalPath is the journal of the spreadsheet out.
func JournalPath(out string) string {
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".journal")
}

type journalLine struct {
	Schema string        `json:"schema"`
	Row    gradebook.Row `json:"row"`
	// Err is why the host could not be graded ("" when it was).
	Err string `json:"err,omitempty"`
}

type journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
	err  error // the first write error; later rows are not journaled
}

// readJournal returns the rows of a journal left by an earlier run, by
// student key (the last line of a host wins), and the number of lines it
// could not read. A missing journal is no rows.
func readJournal(path string) (map[string]journalLine, int, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("grade journal: %w", err)
	}
	defer f.Close()
	rows := map[string]journalLine{}
	bad := 0
	r := bufio.NewReader(io.LimitReader(f, 256<<20))
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 && err == nil { // no newline: torn last line
			var l journalLine
			if json.Unmarshal(line, &l) != nil || l.Schema != journalSchema {
				bad++
			} else {
				rows[l.Row.Key()] = l
			}
		} else if len(bytes.TrimSpace(line)) > 0 {
			bad++
		}
		if err != nil {
			break
		}
	}
	return rows, bad, nil
}

// openJournal opens path for appending (created 0600: it holds grades).
func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("grade journal: %w", err)
	}
	return &journal{path: path, f: f}, nil
}

// add appends h's row with one write and syncs it.
func (j *journal) add(h HostResult) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return nil
	}
	l := journalLine{Schema: journalSchema, Row: h.Row}
	if h.Err != nil {
		l.Err = h.Err.Error()
	}
	b, err := json.Marshal(l)
	if err == nil {
		_, err = j.f.Write(append(b, '\n'))
	}
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		j.err = fmt.Errorf("grade journal %s: %w", j.path, err)
		return j.err
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// remove closes and deletes the journal (the sheet holds its rows now).
func (j *journal) remove() error {
	j.f.Close()
	if err := os.Remove(j.path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
