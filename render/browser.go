package render

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/chromedp/chromedp"

	"github.com/deploylab/deploylab/internal/atomicfile"
	"github.com/deploylab/deploylab/internal/fail"
)

// Chromium finds a headless-capable Chromium: Debian's chromium, or
// another build on the PATH. "" when none is installed.
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium that reaches nothing outside (no
// background networking, updates, sync or QUIC) with a fresh profile in
// userDataDir. Cancel the returned context to stop it.
func Browser(ctx context.Context, execPath, userDataDir string) (context.Context, context.CancelFunc) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userDataDir),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	return bctx, func() { cancelBrowser(); cancelAlloc() }
}

// FileURL is the file:// URL of a local path.
func FileURL(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return (&url.URL{Scheme: "file", Path: abs}).String()
}

// WritePNGs renders each SVG file as a PNG beside it (same name, .png), at
// twice its size for a sharp picture in a document, with headless
// Chromium. It needs Chromium (Debian: apt-get install chromium).
func WritePNGs(ctx context.Context, svgPaths []string) ([]string, error) {
	exe := Chromium()
	if exe == "" {
		return nil, fail.Errorf(fail.Failed, "install Chromium for the PNGs (apt-get install chromium); the SVG files are written", "no Chromium to draw the PNGs")
	}
	tmp, err := os.MkdirTemp("", "deploylab-chromium-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bctx, cancel := Browser(ctx, exe, tmp)
	defer cancel()
	var out []string
	for _, p := range svgPaths {
		err := chromedp.Do(bctx,
			chromedp.EmulateViewport(1400, 1000, chromedp.EmulateScale(2)),
			chromedp.Navigate(FileURL(p)),
		)
		var png []byte
		if err == nil {
			png, err = chromedp.Run(bctx, chromedp.Screenshot(chromedp.CSS("svg")))
		}
		if err != nil {
			return out, fmt.Errorf("png of %s: %w", filepath.Base(p), err)
		}
		dst := strings.TrimSuffix(p, filepath.Ext(p)) + ".png"
		if err := atomicfile.WriteFile(dst, png, 0o644); err != nil {
			return out, err
		}
		out = append(out, dst)
	}
	return out, nil
}
