package app_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"marquee/app/apptest"
)

// hostileNext are post-login targets that browsers (which strip tabs and
// newlines, read backslashes as slashes and resolve dot segments) would
// take off-site, or that are not paths at all.
var hostileNext = []string{
	"/\t/evil.example/login",
	"/\n/evil.example", "/\r\n/evil.example", "/\r/evil.example",
	"/\\evil.example", "\\\\evil.example", "/\\/evil.example", "\\/evil.example",
	"//evil.example", "///evil.example", "//evil.example/portal",
	"/%2F/evil.example", "/%2f%2fevil.example", "%2F%2Fevil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
	"https://evil.example", "https:evil.example", "HTTPS://evil.example/portal", "javascript:alert(1)", "//user@evil.example",
	"/%09/evil.example", "/%0d%0a/evil.example", "/%0A/evil.example", "/%00/evil.example", "/portal/%00",
	"/./evil.example", "/.//evil.example", "/portal/..//evil.example", "/portal/../..//evil.example",
	"/portal/%2e%2e//evil.example", "/portal/%2E%2E/%2Fevil.example", "/portal/./x", "/%2e/evil.example",
	" /portal", "/portal\u2028", "/portal\u00a0x", "/\u3000/evil.example", "/portal/\x7f", "/portal?x=%0d%0aSet-Cookie:x",
	"/portal/\xff", "evil.example", "",
}

var nextField = regexp.MustCompile(`name="next" value="([^"]*)"`)

// Every place that takes a post-login target keeps the browser on this
// host, on the surface it signed in to.
func TestLoginNextNeverLeavesTheHost(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("next"))
	support := supportUser(t, env)
	surfaces := []struct {
		name, slug, loginPath, email, home string
	}{
		{"portal", tn.Slug, "/portal/login", ownerOf(tn), "/portal"},
		{"console", "", "/console/login", support, "/console"},
	}
	for _, s := range surfaces {
		signIn := func(t *testing.T, next string) (pageNext, location string) {
			t.Helper()
			b := newBrowser(env, s.slug)
			res, page := b.do(t, http.MethodGet, s.loginPath+"?next="+url.QueryEscape(next), nil)
			if !utf8.ValidString(next) || strings.ContainsRune(next, 0) {
				// Text that cannot be stored is refused before any handler.
				if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "UTF-8 text") {
					t.Fatalf("next %q: %d", next, res.StatusCode)
				}
				return s.home, s.home
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("login page: %d", res.StatusCode)
			}
			m := nextField.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no next field in the login page")
			}
			res, _ = b.do(t, http.MethodPost, s.loginPath, url.Values{"csrf_token": {formToken(t, page)},
				"email": {s.email}, "password": {apptest.Password}, "next": {next}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("login: %d", res.StatusCode)
			}
			return html.UnescapeString(m[1]), res.Header.Get("Location")
		}
		t.Run(s.name, func(t *testing.T) {
			for _, next := range hostileNext {
				pageNext, loc := signIn(t, next)
				if loc != s.home || pageNext != s.home {
					t.Errorf("next %q: form carries %q, login redirects to %q; want %q", next, pageNext, loc, s.home)
				}
			}
			// Ordinary targets survive, query included.
			for _, next := range []string{s.home, s.home + "/x/y?week=2030-01-07&done=booked", s.home + "/caf%C3%A9"} {
				pageNext, loc := signIn(t, next)
				if loc != next || pageNext != next {
					t.Errorf("next %q: form carries %q, login redirects to %q", next, pageNext, loc)
				}
			}
		})
	}
}

// The console's link into a tenant keeps only a numeric port from the
// request's Host.
func TestConsoleVisitLinkStaysOnTheTenantHost(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("visitlink"))
	support, _ := consoleSession(t, env)
	csrf := formToken(t, support.get(t, "/console"))
	form := url.Values{"csrf_token": {csrf}, "reason": {"checking the link"}}.Encode()
	req, err := http.NewRequest(http.MethodPost, env.Server.URL+"/console/tenants/"+tn.Slug+"/visit", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "localhost:80!$&'()*+,;="
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range support.client.Jar.Cookies(&url.URL{Scheme: "http", Host: "localhost"}) {
		req.AddCookie(c)
	}
	res, err := support.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || err != nil || loc.Host != tn.Slug+".localhost" {
		t.Fatalf("visit link: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}
