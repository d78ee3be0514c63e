package inventory_test

import (
	"context"
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
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "scanner")
	n := newDoorNight(t, s, 0, 3)
	px := newCuttable(t, env.Server.URL)
	host := px.hostURL(s.slug)
	ctx := apptest.Browser(t)
	until := func(expr, what string) {
		t.Helper()
		apptest.Eventually(t, 20*time.Second, what, func() bool {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
			return err == nil && ok
		})
	}
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
	offline := func(off bool) {
		t.Helper()
		// DevTools' offline mode, for the page and its service worker, and
		// navigator.onLine to match.
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
	offline(true)
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload offline: %v", err)
	}
	apptest.WaitVisible(t, ctx, `#scanner`)
	until(`document.querySelector('#scanner').dataset.ready === 'yes' && document.querySelector('#net').textContent === 'offline'`, "the page from the cache, offline")

	scan := func(token, want string) {
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
