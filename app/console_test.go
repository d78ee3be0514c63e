package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
)

// supportUser adds a support staff member of its own to this test.
func supportUser(t *testing.T, env *apptest.Env) string {
	t.Helper()
	email := apptest.UniqueSlug("support") + "@marquee.test"
	if _, err := env.App.CreateSupportUser(t.Context(), email, "Support", apptest.Password); err != nil {
		t.Fatal(err)
	}
	return email
}

func consoleSession(t *testing.T, env *apptest.Env) (*browser, string) {
	t.Helper()
	email := supportUser(t, env)
	b := newBrowser(env, "")
	if res := b.login(t, "/console/login", email, apptest.Password); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("console login: %d", res.StatusCode)
	}
	return b, email
}

// Support staff create, suspend and resume tenants from the console, and
// enter a tenant's portal only through an audited, time-limited visit that
// the tenant's owners can read.
func TestConsoleAndAuditedSupportVisit(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.SupportVisitTTL = 3 * time.Second }
	})
	support, supportEmail := consoleSession(t, env)
	page := support.get(t, "/console")
	csrf := formToken(t, page)

	// Staff of a chain cannot use the console.
	staffOnConsole := env.Do(t, http.MethodGet, "", "/console", "", nil)
	if staffOnConsole.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous console: %d", staffOnConsole.Status)
	}

	slug := apptest.UniqueSlug("made-in-console")
	res, _ := support.do(t, http.MethodPost, "/console/tenants", url.Values{"csrf_token": {csrf}, "slug": {slug}, "name": {"Console Chain"},
		"owner_email": {"owner@" + slug + ".test"}, "owner_password": {apptest.Password}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create tenant: %d", res.StatusCode)
	}
	if page := support.get(t, "/console"); !strings.Contains(page, `data-slug="`+slug+`"`) {
		t.Fatal("new tenant not listed")
	}
	res, body := support.do(t, http.MethodPost, "/console/tenants", url.Values{"csrf_token": {csrf}, "slug": {"Bad Slug!"}, "name": {"x"},
		"owner_email": {"o@x.test"}, "owner_password": {apptest.Password}})
	// Refusals redirect back (post/redirect/get) and say why on the page.
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bad slug: %d %s", res.StatusCode, body)
	}
	if page := support.get(t, res.Header.Get("Location")); !strings.Contains(page, "the slug must start with a letter") {
		t.Fatal("bad slug: the console does not say why")
	}
	// Without the console's CSRF token nothing happens.
	res, _ = support.do(t, http.MethodPost, "/console/tenants/"+slug+"/suspend", url.Values{})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("suspend without csrf: %d", res.StatusCode)
	}
	owner := env.Login(t, slug, "owner@"+slug+".test")

	// Visit: the console mints a one-time entry link to the tenant's host.
	res, _ = support.do(t, http.MethodPost, "/console/tenants/"+slug+"/visit", url.Values{"csrf_token": {csrf}, "reason": {"ticket #4711: owner locked out"}})
	loc, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.Host, slug+".localhost") {
		t.Fatalf("visit: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	visitor := newBrowser(env, slug)
	res, _ = visitor.do(t, http.MethodGet, loc.RequestURI(), nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enter: %d", res.StatusCode)
	}
	replay := newBrowser(env, slug)
	if res, _ := replay.do(t, http.MethodGet, loc.RequestURI(), nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("entry link reused: %d", res.StatusCode)
	}
	home := visitor.get(t, "/portal")
	if !strings.Contains(home, "support visit until") {
		t.Fatal("portal does not show the support visit banner")
	}
	token := csrfMeta.FindStringSubmatch(home)[1]
	res, body = visitor.doJSON(t, http.MethodPost, "/api/v1/users", `{"email":"new@`+slug+`.test","name":"Added by support","password":"long-enough-1"}`, token)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("support change: %d %s", res.StatusCode, body)
	}
	// Support holds no owner powers: the ledger stays closed.
	if res, _ := visitor.doJSON(t, http.MethodGet, "/api/v1/ledger", "", token); res.StatusCode != http.StatusForbidden {
		t.Fatalf("support read the ledger: %d", res.StatusCode)
	}

	log := env.Do(t, http.MethodGet, slug, "/api/v1/support-access", owner, nil)
	wantStatus(t, log, http.StatusOK, "")
	for _, want := range []string{"visit started: ticket #4711", supportEmail, `"method":"POST","path":"/api/v1/users","status":201`} {
		if !strings.Contains(string(log.Body), want) {
			t.Errorf("access log lacks %q: %s", want, log.Body)
		}
	}
	ownerPortal := portalSession(t, env, slug, "owner@"+slug+".test")
	if page := ownerPortal.get(t, "/portal/access-log"); !strings.Contains(page, "ticket #4711") {
		t.Error("owner's portal does not show the access log")
	}

	// The visit ends by itself.
	time.Sleep(3100 * time.Millisecond) // not synchronisation: visit sessions expire on the wall clock, not the App's clock
	if res, _ := visitor.do(t, http.MethodGet, "/portal", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("expired visit still in: %d", res.StatusCode)
	}

	// Suspend and resume from the console; a suspension needs a reason.
	res, _ = support.do(t, http.MethodPost, "/console/tenants/"+slug+"/suspend", url.Values{"csrf_token": {csrf}})
	if page := support.get(t, res.Header.Get("Location")); !strings.Contains(page, "give a reason for suspending") {
		t.Fatal("suspend without a reason: the console does not say why")
	}
	wantStatus(t, env.Do(t, http.MethodGet, slug, "/api/v1/me", owner, nil), http.StatusOK, "")
	res, _ = support.do(t, http.MethodPost, "/console/tenants/"+slug+"/suspend", url.Values{"csrf_token": {csrf}, "reason": {"unpaid invoice"}})
	if page := support.get(t, res.Header.Get("Location")); !strings.Contains(page, "("+slug+") is now suspended.") {
		t.Fatal("suspend: the console does not confirm it")
	}
	wantStatus(t, env.Do(t, http.MethodGet, slug, "/api/v1/me", owner, nil), http.StatusForbidden, "tenant_suspended")
	support.do(t, http.MethodPost, "/console/tenants/"+slug+"/resume", url.Values{"csrf_token": {csrf}})
	wantStatus(t, env.Do(t, http.MethodGet, slug, "/api/v1/me", owner, nil), http.StatusOK, "")

	// The queue monitor sits behind the support login.
	if res, body := support.do(t, http.MethodGet, "/console/queues", nil); res.StatusCode != http.StatusOK || !strings.Contains(body, `id="back-to-console"`) {
		t.Fatalf("queues monitor: %d, with a way back to the console: %v", res.StatusCode, strings.Contains(body, `id="back-to-console"`))
	}
	if res, _ := newBrowser(env, "").do(t, http.MethodGet, "/console/queues/api/queues", nil); res.StatusCode == http.StatusOK {
		t.Fatal("queue monitor API open to anonymous users")
	}
}

func (b *browser) doJSON(t *testing.T, method, path, body, csrf string) (*http.Response, string) {
	t.Helper()
	headers := []string{"Content-Type", "application/json", "Accept", "application/json"}
	if csrf != "" {
		headers = append(headers, app.CSRFHeader, csrf)
	}
	return b.raw(t, method, path, body, headers...)
}
