package app_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"marquee/app/apptest"
)

// browser is a cookie-keeping client on one host, as a browser would be.
type browser struct {
	env    *apptest.Env
	host   string
	client *http.Client
}

func newBrowser(env *apptest.Env, slug string) *browser {
	jar, _ := cookiejar.New(nil)
	host := "localhost"
	if slug != "" {
		host = slug + ".localhost"
	}
	return &browser{env: env, host: host, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(t *testing.T, method, path string, form url.Values, headers ...string) (*http.Response, string) {
	t.Helper()
	body := ""
	if form != nil {
		body = form.Encode()
		headers = append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	}
	return b.raw(t, method, path, body, headers...)
}

func (b *browser) raw(t *testing.T, method, path, rawBody string, headers ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if rawBody != "" {
		body = strings.NewReader(rawBody)
	}
	u := strings.Replace(b.env.Server.URL, "127.0.0.1", b.host, 1) + path
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	// Dial the test server whatever the host name says.
	req.URL.Host = strings.TrimPrefix(b.env.Server.URL, "http://")
	req.Host = b.host
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, string(raw)
}

func (b *browser) get(t *testing.T, path string) string {
	t.Helper()
	res, body := b.do(t, http.MethodGet, path, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return body
}

var (
	csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	csrfMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)
)

func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page: %s", page)
	}
	return m[1]
}

// login signs in through a login form (portal or console).
func (b *browser) login(t *testing.T, loginPath, email, password string) *http.Response {
	t.Helper()
	page := b.get(t, loginPath)
	res, _ := b.do(t, http.MethodPost, loginPath, url.Values{"csrf_token": {formToken(t, page)}, "email": {email}, "password": {password}})
	return res
}

func portalSession(t *testing.T, env *apptest.Env, slug, email string) *browser {
	t.Helper()
	b := newBrowser(env, slug)
	if res := b.login(t, "/portal/login", email, apptest.Password); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("portal login of %s: %d", email, res.StatusCode)
	}
	return b
}

func TestPortalLoginLogoutAndCSRF(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("portal"))
	b := newBrowser(env, tn.Slug)

	// Anonymous: the portal sends you to its login page.
	res, _ := b.do(t, http.MethodGet, "/portal", nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/portal/login") {
		t.Fatalf("anonymous portal: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// A login form posted without its CSRF token is refused.
	res, _ = b.do(t, http.MethodPost, "/portal/login", url.Values{"email": {ownerOf(tn)}, "password": {apptest.Password}})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("login without csrf: %d", res.StatusCode)
	}
	// Wrong password: the form says so.
	page := b.get(t, "/portal/login")
	res, body := b.do(t, http.MethodPost, "/portal/login", url.Values{"csrf_token": {formToken(t, page)}, "email": {ownerOf(tn)}, "password": {"wrong-password-1"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "email or password is wrong") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	if res := b.login(t, "/portal/login", ownerOf(tn), apptest.Password); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/portal" {
		t.Fatalf("login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	home := b.get(t, "/portal")
	if !strings.Contains(home, ownerOf(tn)) || !strings.Contains(home, "<code>owner</code>") {
		t.Fatalf("portal home lacks the principal: %s", home)
	}
	// The session cookie alone does not authorise an unsafe request.
	res, _ = b.do(t, http.MethodPost, "/portal/logout", url.Values{})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without csrf: %d", res.StatusCode)
	}
	res, body = b.do(t, http.MethodPost, "/api/v1/users", nil, "Content-Type", "application/json")
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "csrf_failed") {
		t.Fatalf("cookie API write without csrf: %d %s", res.StatusCode, body)
	}
	token := csrfMeta.FindStringSubmatch(home)[1]
	res, _ = b.do(t, http.MethodPost, "/portal/logout", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	res, _ = b.do(t, http.MethodGet, "/portal", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("portal after logout: %d", res.StatusCode)
	}
	// A post-login redirect never leaves the host.
	page = b.get(t, "/portal/login?next=//evil.example/x")
	if strings.Contains(page, "evil.example") {
		t.Fatal("open redirect accepted in next")
	}
}

func TestLoginRateLimit(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("limit"))
	bad := map[string]string{"email": ownerOf(tn), "password": "not-the-password"}
	for i := range 5 {
		res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", bad)
		if res.Status != http.StatusUnauthorized || res.Code() != "invalid_credentials" {
			t.Fatalf("attempt %d: %d %s", i+1, res.Status, res.Body)
		}
	}
	good := map[string]string{"email": ownerOf(tn), "password": apptest.Password}
	res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/auth/login", "", good)
	wantStatus(t, res, http.StatusTooManyRequests, "rate_limited")
	if res.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another account from elsewhere is not locked out by it.
	other := env.Tenant(t, apptest.UniqueSlug("limit"))
	env.Login(t, other.Slug, ownerOf(other))
}
