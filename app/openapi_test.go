package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"marquee/app/apptest"
)

// recordingTB keeps the errors a check reports instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// Every answer a test reads is checked against the served document: an
// answer that breaks its documented schema is reported, one that keeps it
// is not.
func TestAnswersAreCheckedAgainstTheDocument(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("doc"))

	rec := &recordingTB{TB: t}
	if res := env.Do(rec, http.MethodGet, tn.Slug, "/api/v1/probe/lies", "", nil); res.Status != http.StatusOK {
		t.Fatalf("probe: %d", res.Status)
	}
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "outside its OpenAPI document") || !strings.Contains(rec.errors[0], `"ok"`) {
		t.Fatalf("a body breaking its schema was not reported: %q", rec.errors)
	}

	rec = &recordingTB{TB: t}
	env.Do(rec, http.MethodGet, tn.Slug, "/api/v1/probe/ping", "", nil)
	token := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	env.Do(rec, http.MethodGet, tn.Slug, "/api/v1/me", token, nil)
	env.Do(rec, http.MethodGet, tn.Slug, "/api/v1/users?limit=0", token, nil) // a problem document
	if len(rec.errors) != 0 {
		t.Fatalf("answers keeping their document were reported: %q", rec.errors)
	}
}
