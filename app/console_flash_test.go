package app_test

import (
	"net/http"
	"net/url"
	"testing"

	"marquee/app/apptest"
)

// The console says what it did in plain words.
func TestConsoleFlashAfterSuspendAndResume(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("flash"))
	support, _ := consoleSession(t, env)
	csrf := formToken(t, support.get(t, "/console"))
	for _, step := range []struct{ action, want string }{{"suspend", tn.Name + " (" + tn.Slug + ") is now suspended."}, {"resume", tn.Name + " (" + tn.Slug + ") is now resumed."}} {
		action, want := step.action, step.want
		res, _ := support.do(t, http.MethodPost, "/console/tenants/"+tn.Slug+"/"+action, url.Values{"csrf_token": {csrf}, "reason": {"flash test"}})
		loc, err := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("flash") != want {
			t.Fatalf("%s: %d %q, want flash %q", action, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
}
