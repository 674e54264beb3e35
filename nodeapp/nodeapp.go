// Package nodeapp is the practice's Express app, the one copy deploylab
// uses: up --app node uploads these files (deploy embeds them), sumserver's
// differential tests and scripts/bench-payload.sh run this directory with
// node as the peer (PORT picks the port), once npm ci has filled its
// node_modules.
//
//	app.js             the single-process app (PORT, default 3100); under
//	                   PM2 with wait_ready it sends "ready" once it listens
//	app_cluster.js     the practice's clustered version (Node's cluster module)
//	package.json       express, pinned by
//	package-lock.json
package nodeapp

import (
	"embed"
	"errors"
	"path/filepath"
	"runtime"
)

//go:embed app.js app_cluster.js package.json package-lock.json
var files embed.FS

// Files are the app's files, in upload order.
var Files = []string{"app.js", "app_cluster.js", "package.json", "package-lock.json"}

// File returns the content of one of Files; it panics on another name.
func File(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("nodeapp: no file " + name)
	}
	return b
}

// Dir is this package's directory in the source tree, where node runs the
// app (after npm ci there): for tests and tools run from a checkout.
func Dir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return "", errors.New("nodeapp: the source directory is unknown (built with -trimpath?)")
	}
	return filepath.Dir(file), nil
}
