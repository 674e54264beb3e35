package documents

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Limits bound what a submissions archive may unpack to. The zero value
// means DefaultLimits.
type Limits struct {
	// MaxFileBytes is the largest single file taken (a bigger one is left
	// out with a problem line).
	MaxFileBytes int64
	// MaxTotalBytes bounds the bytes unpacked from the whole archive
	// (nested zips included): a zip bomb stops there.
	MaxTotalBytes int64
	// MaxFiles bounds the files unpacked from the whole archive.
	MaxFiles int
	// MaxDepth bounds nested zips (a zip in a zip in the archive is 2).
	MaxDepth int
}

// DefaultLimits: 200 MB a file, 4 GB and 20000 files in all, zips nested 3
// deep.
var DefaultLimits = Limits{MaxFileBytes: 200 << 20, MaxTotalBytes: 4 << 30, MaxFiles: 20000, MaxDepth: 3}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxFileBytes > 0 {
		d.MaxFileBytes = l.MaxFileBytes
	}
	if l.MaxTotalBytes > 0 {
		d.MaxTotalBytes = l.MaxTotalBytes
	}
	if l.MaxFiles > 0 {
		d.MaxFiles = l.MaxFiles
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	return d
}

// Submission is what one student handed in: a folder of Moodle's archive, a
// subfolder or a single file of a plain folder.
type Submission struct {
	// Folder is the entry's name in the archive or folder
	// ("Ana García_123_assignsubmission_file_").
	Folder string
	// Name is the student's name read from Folder ("Ana García").
	Name string
	// Number is Moodle's participant number in Folder ("123"), if any.
	Number string
	// Files are the documents found, in name order.
	Files []File
	// Problems are one-line reasons something of this submission was left
	// out (too big, unsafe path, corrupt nested zip).
	Problems []string
}

// File is one file of a submission, on disk.
type File struct {
	// Name is the file's path inside the submission, for messages.
	Name string
	// Path is where it is on disk (in the Set's temp dir, or the teacher's
	// folder).
	Path string
	Size int64
}

// Set is a loaded submissions archive or folder.
type Set struct {
	Submissions []*Submission
	// Problems are archive-wide problems (an unsafe path, the file count
	// limit), one line each.
	Problems []string
	tmp      string
}

// Close removes the temp dir the archive was unpacked into.
func (s *Set) Close() error {
	if s == nil || s.tmp == "" {
		return nil
	}
	return os.RemoveAll(s.tmp)
}

// moodleRe matches Moodle's per-student folder of "Download all
// submissions": "Full Name_12345_assignsubmission_file_" (and _onlinetext_).
var moodleRe = regexp.MustCompile(`^(.+?)_(\d+)_assignsubmission_([a-z]+)_?$`)

// LoadSubmissions reads Moodle's "Download all submissions" zip, or a plain
// folder with one file or subfolder per student. A zip is unpacked safely
// into a temp dir (Close removes it): no entry is written outside it, links
// are not followed, sizes and counts are bounded by lim.
func LoadSubmissions(src string, lim Limits) (*Set, error) {
	lim = lim.orDefault()
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("submissions: %w", err)
	}
	set := &Set{}
	tmp, err := os.MkdirTemp("", "deploylab-submissions-*")
	if err != nil {
		return nil, fmt.Errorf("submissions: %w", err)
	}
	set.tmp = tmp
	u := &unpacker{lim: lim, set: set}
	var root string
	if st.IsDir() {
		root = src
	} else {
		if !isZip(src) {
			set.Close()
			return nil, fmt.Errorf("submissions: %s is neither a folder nor a zip archive", src)
		}
		root = filepath.Join(tmp, "archive")
		if err := u.unzip(src, root, "", 1); err != nil {
			set.Close()
			return nil, fmt.Errorf("submissions: %s: %w", src, err)
		}
	}
	if err := u.collect(root); err != nil {
		set.Close()
		return nil, fmt.Errorf("submissions: %w", err)
	}
	return set, nil
}

func isZip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return string(b[:]) == "PK\x03\x04" || string(b[:]) == "PK\x05\x06"
}

type unpacker struct {
	lim   Limits
	set   *Set
	total int64
	files int
	seq   int
}

var errBudget = errors.New("limit reached")

// unzip unpacks archive into dir (created). label prefixes messages. An
// entry with an absolute path or .. is refused; links are skipped.
func (u *unpacker) unzip(archive, dir, label string, depth int) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return fmt.Errorf("not a readable zip archive (%v)", err)
	}
	defer zr.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, `\`, "/")
		if f.FileInfo().IsDir() {
			continue
		}
		clean := path.Clean(name)
		if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\x00") || filepath.VolumeName(name) != "" || (len(name) > 1 && name[1] == ':') {
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%sentrada %q rechazada: ruta fuera del archivo", label, f.Name))
			continue
		}
		if f.Mode()&os.ModeType != 0 {
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%sentrada %q omitida: no es un fichero normal (enlace o dispositivo)", label, f.Name))
			continue
		}
		if u.files >= u.lim.MaxFiles {
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%sdemasiados ficheros (más de %d): el resto se omite", label, u.lim.MaxFiles))
			return nil
		}
		if int64(f.UncompressedSize64) > u.lim.MaxFileBytes {
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%s%s omitido: %s, más del límite de %s", label, clean, humanBytes(int64(f.UncompressedSize64)), humanBytes(u.lim.MaxFileBytes)))
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(clean))
		if rel, err := filepath.Rel(dir, dst); err != nil || strings.HasPrefix(rel, "..") {
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%sentrada %q rechazada: ruta fuera del archivo", label, f.Name))
			continue
		}
		n, err := u.extract(f, dst)
		if errors.Is(err, errBudget) {
			os.Remove(dst)
			if n > u.lim.MaxFileBytes {
				u.set.Problems = append(u.set.Problems, fmt.Sprintf("%s%s omitido: más del límite de %s", label, clean, humanBytes(u.lim.MaxFileBytes)))
				continue
			}
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%sel archivo descomprime más de %s (¿bomba zip?): el resto se omite", label, humanBytes(u.lim.MaxTotalBytes)))
			return nil
		}
		if err != nil {
			os.Remove(dst)
			u.set.Problems = append(u.set.Problems, fmt.Sprintf("%s%s: no se pudo descomprimir (%v)", label, clean, err))
			continue
		}
		u.files++
	}
	return nil
}

// extract copies one entry, counting the bytes really written against the
// file and total limits (the header's sizes are not trusted).
func (u *unpacker) extract(f *zip.File, dst string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, err
	}
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	budget := min(u.lim.MaxFileBytes, u.lim.MaxTotalBytes-u.total)
	n, err := io.Copy(out, io.LimitReader(rc, budget+1))
	u.total += n
	if err != nil {
		return n, err
	}
	if n > budget {
		return n, errBudget
	}
	return n, nil
}

// collect turns the top level of root into submissions: each folder or file
// is one student. A single top folder holding the students (a zip of a
// folder) is looked through.
func (u *unpacker) collect(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	entries = visible(entries)
	if len(entries) == 1 && entries[0].IsDir() && !moodleRe.MatchString(entries[0].Name()) {
		sub := filepath.Join(root, entries[0].Name())
		inner, err := os.ReadDir(sub)
		if err == nil && len(visible(inner)) > 1 {
			root, entries = sub, visible(inner)
		}
	}
	byFolder := map[string]*Submission{}
	for _, e := range entries {
		full := filepath.Join(root, e.Name())
		folder := e.Name()
		name, number := parseFolder(folder, e.IsDir())
		key := strings.ToLower(name) + "\x00" + number
		sub := byFolder[key]
		if sub == nil {
			sub = &Submission{Folder: folder, Name: name, Number: number}
			byFolder[key] = sub
			u.set.Submissions = append(u.set.Submissions, sub)
		}
		if e.IsDir() {
			u.walk(sub, full, "", 1)
		} else {
			u.add(sub, full, e.Name(), 1)
		}
	}
	for _, s := range u.set.Submissions {
		sort.Slice(s.Files, func(i, j int) bool { return s.Files[i].Name < s.Files[j].Name })
	}
	sort.SliceStable(u.set.Submissions, func(i, j int) bool {
		return foldKey(u.set.Submissions[i].Name) < foldKey(u.set.Submissions[j].Name)
	})
	return nil
}

func visible(es []os.DirEntry) []os.DirEntry {
	var out []os.DirEntry
	for _, e := range es {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == "__MACOSX" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// parseFolder reads the student's name and Moodle number from a top-level
// entry: Moodle's folder pattern, else the name without extension.
func parseFolder(folder string, dir bool) (name, number string) {
	if m := moodleRe.FindStringSubmatch(folder); m != nil {
		return strings.TrimSpace(m[1]), m[2]
	}
	if !dir {
		folder = strings.TrimSuffix(folder, filepath.Ext(folder))
		if m := moodleRe.FindStringSubmatch(folder); m != nil {
			return strings.TrimSpace(m[1]), m[2]
		}
	}
	return strings.TrimSpace(strings.NewReplacer("_", " ").Replace(folder)), ""
}

func (u *unpacker) walk(sub *Submission, dir, rel string, depth int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		sub.Problems = append(sub.Problems, fmt.Sprintf("%s: %v", rel, err))
		return
	}
	for _, e := range visible(entries) {
		r := path.Join(rel, e.Name())
		full := filepath.Join(dir, e.Name())
		if e.IsDir() {
			u.walk(sub, full, r, depth)
			continue
		}
		u.add(sub, full, r, depth)
	}
}

// add adds one file to sub; a zip is unpacked (bounded depth) and its files
// added instead.
func (u *unpacker) add(sub *Submission, full, rel string, depth int) {
	st, err := os.Lstat(full)
	if err != nil {
		sub.Problems = append(sub.Problems, fmt.Sprintf("%s: %v", rel, err))
		return
	}
	if !st.Mode().IsRegular() {
		sub.Problems = append(sub.Problems, fmt.Sprintf("%s omitido: no es un fichero normal (enlace o dispositivo)", rel))
		return
	}
	if st.Size() > u.lim.MaxFileBytes {
		sub.Problems = append(sub.Problems, fmt.Sprintf("%s omitido: %s, más del límite de %s", rel, humanBytes(st.Size()), humanBytes(u.lim.MaxFileBytes)))
		return
	}
	if strings.EqualFold(filepath.Ext(full), ".zip") {
		if depth >= u.lim.MaxDepth {
			sub.Problems = append(sub.Problems, fmt.Sprintf("%s omitido: zips anidados a más de %d niveles", rel, u.lim.MaxDepth))
			return
		}
		u.seq++
		dir := filepath.Join(u.set.tmp, fmt.Sprintf("nested-%d", u.seq))
		before := len(u.set.Problems)
		if err := u.unzip(full, dir, rel+": ", depth+1); err != nil {
			sub.Problems = append(sub.Problems, fmt.Sprintf("%s: %v", rel, err))
			return
		}
		// Problems inside a student's zip are the student's.
		sub.Problems = append(sub.Problems, u.set.Problems[before:]...)
		u.set.Problems = u.set.Problems[:before]
		u.walk(sub, dir, rel, depth+1)
		return
	}
	sub.Files = append(sub.Files, File{Name: rel, Path: full, Size: st.Size()})
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
