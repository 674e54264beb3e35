//go:build ignore

// gen_dist writes the payload's binaries for every architecture into
// payload/dist/linux-<arch>/, for a release build of deploylab with
// -tags embedpayload. Run it with `go generate ./payload` from the source
// tree. dist/ is ignored by git.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deploylab/deploylab/internal/atomicfile"
	"github.com/deploylab/deploylab/payload"
)

func main() {
	ctx := context.Background()
	src, err := payload.FindSource()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen_dist:", err)
		os.Exit(1)
	}
	dist := filepath.Join(src, "payload", "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gen_dist:", err)
		os.Exit(1)
	}
	if err := atomicfile.WriteFile(filepath.Join(dist, ".gitignore"), []byte("*\n"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen_dist:", err)
		os.Exit(1)
	}
	for _, arch := range payload.Arches {
		s, err := payload.Build(ctx, payload.Options{GOARCH: arch, SourceDir: src, NoEmbedded: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "gen_dist:", err)
			os.Exit(1)
		}
		dir := filepath.Join(dist, "linux-"+arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "gen_dist:", err)
			os.Exit(1)
		}
		for _, b := range s.Binaries {
			if err := atomicfile.WriteFile(filepath.Join(dir, b.Name), b.Data, 0o755); err != nil {
				fmt.Fprintln(os.Stderr, "gen_dist:", err)
				os.Exit(1)
			}
		}
		fmt.Printf("payload/dist/linux-%s: %s (%s, %d bytes)\n", arch, s.Hash, s.Origin, s.Size())
	}
}
