package apptest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian installs the browser used by browser tests.
const ChromiumPath = "/usr/bin/chromium"

// Browser starts a headless Chromium for a test and returns its context. A
// missing Chromium fails the test rather than skipping it: a skipped browser
// test would let a broken page pass CI unseen (deployments/local/services.sh
// --for-tests installs it, as CI does).
func Browser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Fatal("chromium is not installed at " + ChromiumPath + "; run deployments/local/services.sh --for-tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// HostURL is the test server's URL on a tenant's host name (slug "" for the
// base host); Chromium resolves *.localhost to loopback by itself.
func (e *Env) HostURL(slug string) string {
	host := "localhost"
	if slug != "" {
		host = slug + ".localhost"
	}
	return strings.Replace(e.Server.URL, "127.0.0.1", host, 1)
}

// Screenshot saves a full-page PNG under the OS temp directory and logs its path.
func Screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(os.TempDir(), "marquee-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// StreamOpen is a JavaScript expression, true once a page watched by
// WatchEventStreams has an event stream open.
const StreamOpen = "(window.__apptestStreamsOpen || 0) > 0"

// WatchEventStreams makes every page the browser opens from now on count its
// event streams that have opened (StreamOpen). The server subscribes before
// it answers a stream with ": connected", so once a stream is open the page
// receives whatever is published next: the signal to wait for, instead of a
// pause, before publishing something a test expects the page to show.
func WatchEventStreams(t *testing.T, ctx context.Context) {
	t.Helper()
	const script = `(function () {
  var ES = window.EventSource;
  if (!ES) return;
  window.__apptestStreamsOpen = 0;
  window.EventSource = function (url, init) {
    var es = new ES(url, init);
    es.addEventListener('open', function () { window.__apptestStreamsOpen++; });
    return es;
  };
  window.EventSource.prototype = ES.prototype;
})();`
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	}))
	if err != nil {
		t.Fatalf("watch event streams: %v", err)
	}
}

// WaitVisible waits up to 20 s for an element to show, failing the test with
// what the page says instead.
func WaitVisible(t testing.TB, ctx context.Context, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
		t.Fatalf("waiting for %s: %v; the page says %q", sel, err, body)
	}
}

// Text reads an element's text.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}
