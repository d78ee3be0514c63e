package app_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"gorm.io/gorm"

	"marquee/app/apptest"
)

// Text PostgreSQL cannot store (a NUL character, invalid UTF-8) is refused
// with 400 naming the field wherever it comes in — JSON bodies, form posts,
// query strings and path parameters — and changes nothing.
func TestUnstorableTextIsRefusedEverywhere(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("text"))
	owner := env.Login(t, tn.Slug, ownerOf(tn))
	count := func(q string) (n int64) {
		if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error { return tx.Raw(q).Row().Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	countTenants := func() (n int64) {
		if err := env.App.DB.Raw(`SELECT count(*) FROM control.tenants`).Row().Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	users, tenantsBefore := count(`SELECT count(*) FROM users`), countTenants()

	api := []struct {
		name, method, path, body, field string
	}{
		{"name with NUL", "POST", "/api/v1/users", `{"email":"nul@x.test","name":"Bad\u0000Name","password":"long-enough-1"}`, "name"},
		{"email with NUL", "POST", "/api/v1/users", `{"email":"nul\u0000@x.test","name":"x","password":"long-enough-1"}`, "email"},
		{"name with invalid UTF-8", "POST", "/api/v1/users", "{\"email\":\"bad@x.test\",\"name\":\"Bad\xc3\x28\",\"password\":\"long-enough-1\"}", "name"},
		{"password with NUL", "POST", "/api/v1/users", `{"email":"pw@x.test","name":"x","password":"long-enough-1\u0000"}`, "password"},
		{"key with NUL", "POST", "/api/v1/users", `{"email":"k@x.test","na\u0000me":"x","password":"long-enough-1"}`, `na\u0000me`},
		{"login email with NUL", "POST", "/api/v1/auth/login", `{"email":"owner\u0000@x.test","password":"long-enough-1"}`, "email"},
		{"role with NUL", "POST", "/api/v1/role-assignments", `{"user_id":"x","role":"owner\u0000"}`, "role"},
		{"query with NUL", "GET", "/api/v1/users?after=%00", "", "query parameter after"},
		{"query with invalid UTF-8", "GET", "/api/v1/role-assignments?user_id=%C3%28", "", "query parameter user_id"},
	}
	for _, tc := range api {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = []byte(tc.body)
			}
			res := env.Do(t, tc.method, tn.Slug, tc.path, owner, body)
			wantStatus(t, res, http.StatusBadRequest, "invalid_text")
			var p struct{ Field string }
			res.JSON(t, &p)
			if p.Field != tc.field {
				t.Fatalf("field %q, want %q: %s", p.Field, tc.field, res.Body)
			}
		})
	}
	// Nested fields are named by their path.
	var p struct{ Field string }
	res := env.Do(t, "POST", tn.Slug, "/api/v1/users", owner, []byte(`{"email":"n@x.test","name":"x","password":"long-enough-1","extra":{"list":[1,{"deep":"a\u0000"}]}}`))
	wantStatus(t, res, http.StatusBadRequest, "invalid_text")
	if res.JSON(t, &p); p.Field != "extra.list[1].deep" {
		t.Fatalf("nested field named %q", p.Field)
	}
	// An escaped backslash before u0000 is ordinary text, not a NUL.
	res = env.Do(t, "POST", tn.Slug, "/api/v1/users", owner, []byte(`{"email":"slash@x.test","name":"C:\\u0000","password":"long-enough-1"}`))
	wantStatus(t, res, http.StatusCreated, "")
	users++

	// Form posts of pages: the portal and console login forms, and the
	// console's tenant form.
	b := newBrowser(env, tn.Slug)
	page := b.get(t, "/portal/login")
	r, body := b.do(t, http.MethodPost, "/portal/login", url.Values{"csrf_token": {formToken(t, page)}, "email": {ownerOf(tn) + "\x00"}, "password": {apptest.Password}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(strings.ToLower(body), "form field email") {
		t.Fatalf("portal login with NUL: %d %s", r.StatusCode, body)
	}
	r, body = b.do(t, http.MethodPost, "/portal/login", url.Values{"csrf_token": {formToken(t, page)}, "email": {ownerOf(tn)}, "password": {"\xff\xfe"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(strings.ToLower(body), "form field password") {
		t.Fatalf("portal login with invalid UTF-8: %d %s", r.StatusCode, body)
	}
	support, _ := consoleSession(t, env)
	csrf := formToken(t, support.get(t, "/console"))
	slug := apptest.UniqueSlug("nul-chain")
	r, body = support.do(t, http.MethodPost, "/console/tenants", url.Values{"csrf_token": {csrf}, "slug": {slug}, "name": {"NUL\x00 Chain"},
		"owner_email": {"owner@" + slug + ".test"}, "owner_password": {apptest.Password}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(strings.ToLower(body), "form field name") {
		t.Fatalf("console tenant with NUL name: %d %s", r.StatusCode, body)
	}
	r, _ = support.do(t, http.MethodPost, "/console/tenants/"+url.PathEscape(tn.Slug+"\x00")+"/suspend", url.Values{"csrf_token": {csrf}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("console path parameter with NUL: %d", r.StatusCode)
	}

	if n := count(`SELECT count(*) FROM users`); n != users {
		t.Fatalf("users %d -> %d", users, n)
	}
	if n := countTenants(); n != tenantsBefore {
		t.Fatalf("tenants %d -> %d", tenantsBefore, n)
	}
}
