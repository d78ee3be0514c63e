package inventory_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
	"marquee/modules/inventory"
)

// cuttable is a proxy in front of the test server whose network can be cut:
// cut, every connection is dropped without an answer, as with the venue's
// Wi-Fi gone (the browser, its service worker included, reaches nothing).
type cuttable struct {
	srv  *httptest.Server
	down atomic.Bool
}

func newCuttable(t *testing.T, target string) *cuttable {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c := &cuttable{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // the chain is named by the host
	}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cuttable) hostURL(slug string) string {
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(c.srv.URL, "http://"))
	return "http://" + slug + ".localhost:" + port
}

// The offline scanner in Chromium: it loads and installs its service
// worker, downloads the manifest and keys; the network is cut and the page
// reloads from the worker's cache; a valid ticket admits, the same again
// says ALREADY, a forged one INVALID — all verified on the device; a ticket
// admitted online meanwhile (later than this device's scan) is taken over
// at the sync, which happens when the network comes back: the server holds
// one admission per ticket, the earliest, and the conflict report shows it.
func TestBrowserOfflineScanner(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "scanner")
	n := newDoorNight(t, s, 0, 3)
	px := newCuttable(t, env.Server.URL)
	host := px.hostURL(s.slug)
	ctx := apptest.Browser(t)
	until := func(expr, what string) { t.Helper(); pageUntil(t, ctx, expr, what) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/scanner?event="+n.ev)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#scanner`)
	until(`document.querySelector('#scanner').dataset.ready === 'yes'`, "the manifest downloaded")
	until(`document.querySelector('#scanner').dataset.sw === 'ready' && navigator.serviceWorker.controller !== null`, "the service worker controlling the page")
	if m := apptest.Text(t, ctx, `#manifest`); !strings.HasPrefix(m, "3 tickets") {
		t.Fatalf("manifest line %q", m)
	}
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('link[rel=manifest]') !== null`)); !ok {
		t.Fatal("no web app manifest linked")
	}

	// The network goes: the proxy drops everything and DevTools says offline.
	px.down.Store(true)
	offline := func(off bool) { t.Helper(); browserOffline(t, ctx, off) }
	offline(true)
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload offline: %v", err)
	}
	apptest.WaitVisible(t, ctx, `#scanner`)
	until(`document.querySelector('#scanner').dataset.ready === 'yes' && document.querySelector('#net').textContent === 'offline'`, "the page from the cache, offline")

	scan := func(token, want string) { t.Helper(); scanInPage(t, ctx, token, want) }
	a, b := n.floor[0].Token, n.floor[1].Token
	// B first: the other gate's online admission of it below comes after
	// every other scan here, so the two are seconds apart, well beyond the
	// error of the device's clock-offset measurement on a loaded machine.
	scan(b, "admit")
	scan(a, "admit")
	apptest.Screenshot(t, ctx, "scanner-offline-admit")
	scan(a, "already_admitted")
	apptest.Screenshot(t, ctx, "scanner-offline-already")
	forged := a[:100] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, a[100:110]) + a[110:]
	scan(forged, "invalid")
	apptest.Screenshot(t, ctx, "scanner-offline-invalid")
	until(`document.querySelector('#pending').textContent === '3'`, "three scans waiting (the forged one stays on the device)")
	// Meanwhile ticket B is admitted online at another gate: later than
	// this device's scan of it.
	n.mustScan(t, b, "entry", inventory.ResultAdmit, "device_id", "turnstile-9", "gate", "East")

	// The network is back: the page syncs by itself.
	px.down.Store(false)
	offline(false)
	until(`document.querySelector('#pending').textContent === '0'`, "every scan synced")
	apptest.Screenshot(t, ctx, "scanner-synced")
	if st := apptest.Text(t, ctx, `#sync-status`); !strings.Contains(st, "clock offset") || !strings.Contains(st, "1 conflicts") {
		t.Fatalf("sync status %q", st)
	}

	// The server: one admission each, this device's (the earliest); the
	// duplicate recorded as refused; nothing of the forged token.
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE event_id = ? AND device_id LIKE 'web-%' AND offline`, n.ev); c != 3 {
		t.Fatalf("%d synced records, want 3", c)
	}
	for _, tk := range n.floor[:2] {
		if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND device_id LIKE 'web-%'`, tk.ID); c != 1 {
			t.Fatalf("ticket %s: %d admissions by the browser", tk.ID, c)
		}
	}
	if at := n.attendance(t); at.Inside != 2 || at.Admitted != 2 {
		t.Fatalf("attendance %+v", at)
	}
	if rep := n.conflicts(t); rep.Total != 1 || rep.Conflicts[0].Other.DeviceID != "turnstile-9" || !rep.Conflicts[0].Admission.Offline {
		t.Fatalf("conflicts %+v", rep)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(host+"/portal/scanner/conflicts?event="+n.ev)); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#conflicts`)
	if txt := apptest.Text(t, ctx, `#conflicts`); !strings.Contains(txt, "turnstile-9") || !strings.Contains(txt, "East") {
		t.Fatalf("conflict page %q", txt)
	}
	apptest.Screenshot(t, ctx, "scanner-conflicts")
}

// pageUntil waits until the page's expression expr is true.
func pageUntil(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	apptest.Eventually(t, 20*time.Second, what, func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		return err == nil && ok
	})
}

// browserOffline switches DevTools' offline mode, for the page and its
// service worker, and navigator.onLine to match.
func browserOffline(t *testing.T, ctx context.Context, off bool) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &off,
			MatchedNetworkConditions:    []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// scanInPage types a token into the scanner's manual field (entry or exit
// as the page's type selector says) and waits for the verdict want.
func scanInPage(t *testing.T, ctx context.Context, token, want string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#token`), token), chromedp.Click(chromedp.CSS(`#manual button`))); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); ; {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#verdict').dataset.result`))
		if got == want {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("verdict %q (%s), want %s", got, apptest.Text(t, ctx, `#verdict-detail`), want)
		}
		time.Sleep(50 * time.Millisecond) // polling the page: no signal crosses into the test
	}
	// The next scan must show its own verdict, not this one's.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#verdict').dataset.result = ''`)); err != nil {
		t.Fatal(err)
	}
}

// The offline scanner applies the event's "everyone out at" time from its
// manifest header. A and B came in online, C at the device while offline;
// the time is then set a few seconds ahead, and the device learns it when
// the network is back (the manifest refreshed whole: its delta could not
// say who is cleared). Offline again, once the time has passed: A (inside
// by the manifest) and C (inside by the device's own log) count as out, so
// their entries are re-entries and admit; D's first entry admits and its
// second finds D inside; B's exit finds nobody inside. Synced, the server
// agrees with every verdict: no conflicts, inside A, C and D.
func TestBrowserScannerEveryoneOut(t *testing.T) {
	// Serial: a browser test: one Chromium at a time is what 2 cores take.
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "scanout")
	n := newDoorNight(t, s, 0, 4)
	n.putDoor(t, map[string]any{"reentry": true})
	a, b, c, d := n.floor[0].Token, n.floor[1].Token, n.floor[2].Token, n.floor[3].Token
	n.mustScan(t, a, "entry", inventory.ResultAdmit)
	n.mustScan(t, b, "entry", inventory.ResultAdmit)

	px := newCuttable(t, env.Server.URL)
	host := px.hostURL(s.slug)
	ctx := apptest.Browser(t)
	until := func(expr, what string) { t.Helper(); pageUntil(t, ctx, expr, what) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(host+"/portal/login?next="+url.QueryEscape("/portal/scanner?event="+n.ev)),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), "owner@"+s.slug+".test"),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
	); err != nil {
		t.Fatal(err)
	}
	apptest.WaitVisible(t, ctx, `#scanner`)
	until(`document.querySelector('#scanner').dataset.ready === 'yes'`, "the manifest downloaded")
	setNet := func(off bool) {
		t.Helper()
		px.down.Store(off)
		browserOffline(t, ctx, off)
	}
	scanAs := func(typ, token, want string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(`#type`), typ)); err != nil {
			t.Fatal(err)
		}
		scanInPage(t, ctx, token, want)
	}

	setNet(true)
	until(`document.querySelector('#net').textContent === 'offline'`, "the page offline")
	scanAs("entry", c, "admit")
	scanAs("entry", a, "already_admitted")

	out := time.Now().Add(12 * time.Second).UTC().Truncate(time.Millisecond)
	n.putDoor(t, map[string]any{"reentry": true, "everyone_out_at": out})
	setNet(false)
	until(`document.querySelector('#pending').textContent === '0'`, "the offline scans synced")
	const header = `window.marqueeScanner.state.header`
	until(header+`.everyone_out_at && Date.parse(`+header+`.everyone_out_at) === `+fmt.Sprint(out.UnixMilli())+` && `+header+`.full === true`,
		"the manifest with the new everyone-out time, fetched whole")
	// The manifest was made before the time: the device clears on its own.
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`Date.parse(`+header+`.generated_at) < Date.parse(`+header+`.everyone_out_at)`)); !ok {
		t.Fatal("the manifest was generated after the everyone-out time: the device's own clearing was not exercised")
	}
	apptest.Screenshot(t, ctx, "scanner-everyone-out-known")

	setNet(true)
	until(`document.querySelector('#net').textContent === 'offline'`, "the page offline again")
	apptest.Eventually(t, 30*time.Second, "the everyone-out time passed on the device", func() bool {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Date.now() >= Date.parse(`+header+`.everyone_out_at) + 500`))
		return err == nil && ok
	})
	scanAs("entry", a, "admit")
	apptest.Screenshot(t, ctx, "scanner-everyone-out-readmit")
	scanAs("entry", c, "admit")
	scanAs("entry", d, "admit")
	scanAs("entry", d, "already_admitted")
	scanAs("exit", b, "not_inside")
	apptest.Screenshot(t, ctx, "scanner-everyone-out-not-inside")

	setNet(false)
	until(`document.querySelector('#pending').textContent === '0'`, "every scan synced")
	apptest.Screenshot(t, ctx, "scanner-everyone-out-synced")
	if rep := n.conflicts(t); rep.Total != 0 {
		t.Fatalf("the server disagreed with the device: conflicts %+v", rep)
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE event_id = ? AND offline AND result IS DISTINCT FROM device_result`, n.ev); c != 0 {
		t.Fatalf("%d synced scans the server judged otherwise than the device", c)
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE event_id = ? AND offline`, n.ev); c != 7 {
		t.Fatalf("%d synced records, want 7", c)
	}
	if at := n.attendance(t); at.Inside != 3 || at.Admitted != 4 {
		t.Fatalf("attendance %+v, want A, C and D inside", at)
	}
}
