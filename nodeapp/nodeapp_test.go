package nodeapp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestFiles: the embedded files are the directory's, and the app keeps
// deploylab's two lines (PORT, the ready message for PM2's wait_ready).
func TestFiles(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Files {
		disk, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(disk, File(name)) {
			t.Errorf("%s: embedded copy differs from the file", name)
		}
	}
	for _, want := range []string{"process.env.PORT || 3100", `process.send("ready")`} {
		if !bytes.Contains(File("app.js"), []byte(want)) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("File of an unknown name did not panic")
		}
	}()
	File("server.js")
}
