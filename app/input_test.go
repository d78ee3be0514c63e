package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"

	"marquee/app/apptest"
)

// Hostile or malformed bodies get a clear problem document and change nothing.
func TestBadInputChangesNothing(t *testing.T) {
	env, _ := startProbe(t, func(o *apptest.Options) {})
	tn := env.Tenant(t, apptest.UniqueSlug("input"))
	owner := env.Login(t, tn.Slug, ownerOf(tn))
	countUsers := func() int64 {
		var n int64
		if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
			return tx.Raw("SELECT count(*) FROM users").Row().Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countUsers()
	huge := `{"email":"a@b.test","name":"` + strings.Repeat("x", 2<<20) + `","password":"long-enough-1"}`
	// Each bad body to POST /api/v1/users: its status and problem code, and
	// not a row more in users.
	bad := func(name, body string, status int, code string) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: http.MethodPost, Path: "/api/v1/users", Tenant: tn.Slug, Token: owner,
			Body: []byte(body), Status: status, Code: code, Changes: map[string]int{"users": 0}}
	}
	form := bad("not json", `email=a@b.test`, 415, "unsupported_media_type")
	form.Headers = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	apptest.RunScenarios(t, env, []apptest.Scenario{
		bad("malformed", `{"email": "a@b.test",`, 400, "invalid_json"),
		bad("empty", ``, 400, "invalid_json"),
		bad("wrong type", `{"email": 42, "name": "x", "password": "long-enough-1"}`, 400, "invalid_json"),
		bad("unknown field", `{"email": "a@b.test", "name": "x", "password": "long-enough-1", "role": "owner"}`, 400, "invalid_json"),
		bad("two values", `{"email": "a@b.test", "name": "x", "password": "long-enough-1"} {}`, 400, "invalid_json"),
		form,
		bad("huge", huge, 413, "payload_too_large"),
		bad("sql in email", `{"email": "x'); DROP TABLE users;--@b.test", "name": "x", "password": "long-enough-1"}`, 400, "invalid_email"),
		bad("weak password", `{"email": "weak@b.test", "name": "x", "password": "short"}`, 400, "weak_password"),
		bad("array", `[]`, 400, "invalid_json"),
	})
	if after := countUsers(); after != before {
		t.Fatalf("bad input changed the users table: %d → %d", before, after)
	}
	// SQL-looking text where text is allowed is stored verbatim.
	name := "Robert'); DROP TABLE users;--"
	res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/users", owner, map[string]string{"email": "bobby@" + tn.Slug + ".test", "name": name, "password": "long-enough-1"})
	wantStatus(t, res, http.StatusCreated, "")
	var u struct{ Name string }
	res.JSON(t, &u)
	if u.Name != name || countUsers() != before+1 {
		t.Fatalf("name stored as %q", u.Name)
	}
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/users", owner, map[string]string{"email": "bobby@" + tn.Slug + ".test", "name": "x", "password": "long-enough-1"}), http.StatusConflict, "email_taken")
	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/api/v1/users?limit=0", owner, nil), http.StatusBadRequest, "invalid_limit")
	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/api/v1/users?after=x%27OR%271", owner, nil), http.StatusBadRequest, "invalid_cursor")
	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/api/v1/nope", owner, nil), http.StatusNotFound, "not_found")
	wantStatus(t, env.Do(t, http.MethodPut, tn.Slug, "/api/v1/users", owner, nil), http.StatusMethodNotAllowed, "method_not_allowed")
}

// Cursor pagination walks a list without gaps or repeats.
func TestUsersCursorPagination(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("pages"))
	for i := range 7 {
		env.User(t, tn, "p"+string(rune('a'+i))+"@"+tn.Slug+".test", "", "")
	}
	owner := env.Login(t, tn.Slug, ownerOf(tn))
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/users?limit=3&after="+after, owner, nil)
		wantStatus(t, res, http.StatusOK, "")
		var page struct {
			Items []struct{ ID string }
			Next  string
		}
		res.JSON(t, &page)
		for _, it := range page.Items {
			if seen[it.ID] {
				t.Fatalf("user %s repeated", it.ID)
			}
			seen[it.ID] = true
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if len(seen) != 8 { // 7 staff + the owner
		t.Fatalf("saw %d users, want 8", len(seen))
	}
}
