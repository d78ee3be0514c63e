package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"marquee/app/apptest"
)

// A new user's first steps, in a real browser: sign in to the portal, see
// the chain and its roles; support signs in to the console and sees tenants.
func TestBrowserPortalAndConsole(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("browser"))
	support := supportUser(t, env)
	ctx := apptest.Browser(t)

	login := func(url, email string, landed chromedp.CSS) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
			chromedp.Submit(chromedp.CSS(`#login-form`)),
			chromedp.WaitVisible(landed),
		)
		if err != nil {
			t.Fatalf("sign in at %s: %v", url, err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	login(env.HostURL(tn.Slug)+"/portal", ownerOf(tn), `ul.roles`)
	if heading, body := text(`h1`), text(`main`); heading != tn.Name || !strings.Contains(body, ownerOf(tn)) || !strings.Contains(body, "owner") {
		t.Fatalf("portal home shows %q / %q", heading, body)
	}
	apptest.Screenshot(t, ctx, "portal-home")

	// The owner requires consent; support asks; the owner lets them in.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.HostURL(tn.Slug)+"/portal/access-log"),
		chromedp.WaitVisible(chromedp.CSS(`#support-consent input[name=required]`)),
		chromedp.Click(chromedp.CSS(`#support-consent input[name=required]`)),
		// The box is checked before the form goes: mark this page, so the
		// wait below is for the page the redirect brings back.
		chromedp.SetAttributeValue(chromedp.CSS(`#support-consent`), "data-before-save", "1"),
		chromedp.Submit(chromedp.CSS(`#support-consent form`)),
		chromedp.WaitVisible(chromedp.CSS(`#support-consent:not([data-before-save]) input[name=required]:checked`)),
	); err != nil {
		t.Fatalf("require consent: %v", err)
	}
	asker, askerEmail := consoleSession(t, env)
	asker.do(t, http.MethodPost, "/console/tenants/"+tn.Slug+"/visit", url.Values{"csrf_token": {formToken(t, asker.get(t, "/console"))}, "reason": {"ticket #88: refund stuck"}})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(env.HostURL(tn.Slug)+"/portal/access-log"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-request] button`)),
	); err != nil {
		t.Fatalf("pending request: %v", err)
	}
	if row := text(`tr[data-request]`); !strings.Contains(row, askerEmail) || !strings.Contains(row, "ticket #88") {
		t.Fatalf("request row: %q", row)
	}
	apptest.Screenshot(t, ctx, "portal-support-consent")
	if err := chromedp.Do(ctx,
		chromedp.SetAttributeValue(chromedp.CSS(`#support-consent`), "data-before-save", "1"),
		chromedp.Submit(chromedp.CSS(`tr[data-request] form`)),
		chromedp.WaitVisible(chromedp.CSS(`#support-consent:not([data-before-save]) tr[data-request]`)),
	); err != nil {
		t.Fatalf("grant: %v", err)
	}
	if row := text(`tr[data-request]`); !strings.Contains(row, "allowed to start a visit until") {
		t.Fatalf("after granting: %q", row)
	}

	login(env.HostURL("")+"/console", support, `#tenants`)
	if tenants := text(`#tenants`); !strings.Contains(tenants, tn.Slug) || !strings.Contains(tenants, "active") {
		t.Fatalf("console tenants: %q", tenants)
	}
	apptest.Screenshot(t, ctx, "console-tenants")
}
