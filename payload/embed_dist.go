//go:build embedpayload

package payload

import (
	"embed"
	"io/fs"
)

// dist holds the binaries `go generate ./payload` wrote; built into
// deploylab with -tags embedpayload (the release build).
//
//go:embed dist
var dist embed.FS

func init() {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	embedded = sub
}
