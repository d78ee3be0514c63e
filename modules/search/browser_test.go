package search_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// TestBrowserSearchPage: the storefront opens on search; a search with a
// typo and a category from the select finds the event with its matches
// marked and its all-in price; the page fits a 390 px phone.
func TestBrowserSearchPage(t *testing.T) {
	e := startEnv(t)
	c := seedCatalogue(t, e)
	// Sales on two events make the trending list.
	c.sell(t, "metallica", 3)
	c.sell(t, "sigur", 1)
	ctx := apptest.Browser(t)
	base := e.HostURL(c.t.Slug)
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#trending`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if got := apptest.Text(t, ctx, "#trending"); !strings.Contains(got, "Metallica tribute night") || strings.Index(got, "Metallica") > strings.Index(got, "Sigur") {
		t.Fatalf("trending: %q", got)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "sigor ros"),
		chromedp.SetValue(chromedp.CSS(`select[name=category]`), "concert"),
		chromedp.Submit(chromedp.CSS(`#search-form`)),
		// The home page has results too: wait for the answer's marked words.
		chromedp.WaitVisible(chromedp.CSS(`#results mark`)),
	); err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`#results`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html, "<mark>Sigur</mark> <mark>Rós</mark> live") || !strings.Contains(html, "EUR 57.50") || !strings.Contains(html, "all-in") {
		t.Fatalf("results: %s", html)
	}
	apptest.Screenshot(t, ctx, "search-desktop")
	// A phone: nothing wider than the screen.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(base+"/search?"+url.Values{"q": {"cafe"}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`#results`)),
	); err != nil {
		t.Fatal(err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 390 {
		t.Fatalf("page is %d px wide on a 390 px screen", width)
	}
	apptest.Screenshot(t, ctx, "search-390")
	// Bad input shows the problem on the page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/search?near=abc&radius_km=5"),
		chromedp.WaitVisible(chromedp.CSS(`#search-error`)),
	); err != nil {
		t.Fatal(err)
	}
	if got := apptest.Text(t, ctx, "#search-error"); !strings.Contains(got, "latitude,longitude") {
		t.Fatalf("error shown: %q", got)
	}
}
