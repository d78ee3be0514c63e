package app_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/policies"
)

// The chain's last owner keeps the role: alone, removing it is refused;
// two owners removing each other at the same instant (many times over)
// leave one owner, never none.
func TestLastOwnerStays(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("last-owner"))
	ownerTok := env.Login(t, tn.Slug, ownerOf(tn))
	owner, err := env.App.Enforcer.Assignments(tn.Slug, "")
	if err != nil || len(owner) != 1 {
		t.Fatalf("assignments %v %v", owner, err)
	}
	res := env.Do(t, "DELETE", tn.Slug, "/api/v1/role-assignments?user_id="+owner[0].UserID+"&role=owner", ownerTok, nil)
	wantStatus(t, res, http.StatusConflict, "last_owner")
	owners := func() int {
		as, err := env.App.Enforcer.Assignments(tn.Slug, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, a := range as {
			if a.Role == policies.RoleOwner && a.Venue == "" {
				n++
			}
		}
		return n
	}
	for round := range 4 {
		second := env.User(t, tn, "co-owner-"+string(rune('a'+round))+"@"+tn.Slug+".test", policies.RoleOwner, "")
		secondTok := env.Login(t, tn.Slug, second.Email)
		cur, _ := env.App.Enforcer.Assignments(tn.Slug, "")
		var first string
		for _, a := range cur {
			if a.Role == policies.RoleOwner && a.UserID != second.ID.String() {
				first = a.UserID
			}
		}
		firstTok := ownerTok
		if first != owner[0].UserID { // the first owner lost the role in an earlier round
			t.Fatalf("round %d: unexpected owner %s", round, first)
		}
		var wg sync.WaitGroup
		statuses := make([]int, 8)
		start := make(chan struct{})
		for i := range statuses {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				target, tok := first, secondTok
				if i%2 == 1 {
					target, tok = second.ID.String(), firstTok
				}
				r, err := env.Try("DELETE", tn.Slug, "/api/v1/role-assignments?user_id="+target+"&role=owner", tok, nil)
				if err == nil {
					statuses[i] = r.Status
				}
			}(i)
		}
		close(start)
		wg.Wait()
		removed := 0
		for _, s := range statuses {
			switch s {
			case http.StatusNoContent:
				removed++
			case http.StatusConflict, http.StatusForbidden, http.StatusNotFound:
			default:
				t.Fatalf("round %d: a remover got %d", round, s)
			}
		}
		if n := owners(); n != 1 || removed != 1 {
			t.Fatalf("round %d: %d owner(s) left after %d removals, want 1 and 1", round, n, removed)
		}
		// Back to the first owner alone for the next round.
		if err := env.App.Enforcer.Assign(tn.Slug, policies.Assignment{UserID: first, Role: policies.RoleOwner}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Enforcer.Unassign(tn.Slug, policies.Assignment{UserID: second.ID.String(), Role: policies.RoleOwner}); err != nil {
			t.Fatal(err)
		}
	}
}

// Staff manage people in a real browser, on a desktop and on a phone: the
// owner invites a promoter, who chooses a password from the e-mailed link
// (which then stops working) and signs in; the owner gives them the
// finance role and takes it back; a refused invitation says why beside the
// field.
func TestBrowserUsersAndRoles(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("users-page"))
	linkRe := regexp.MustCompile(`https?://\S+/portal/invite\?\S+`)
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"desktop", 1280, 900}, {"phone", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			ctx := apptest.Browser(t)
			host := env.HostURL(tn.Slug)
			email := "pat-" + size.name + "@" + tn.Slug + ".test"
			if err := chromedp.Do(ctx,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(host+"/portal/login?next=/portal/users"),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), ownerOf(tn)),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), apptest.Password),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#invite-form`)
			// A taken e-mail: refused beside the field, typed values kept.
			if err := chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`#invite-form input[name=name]`), "Pat Promoter"),
				chromedp.SendKeys(chromedp.CSS(`#invite-form input[name=email]`), ownerOf(tn)),
				chromedp.SetValue(chromedp.CSS(`#invite-form select[name=role]`), "promoter"),
				chromedp.Click(chromedp.CSS(`#invite-send`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#users-error`)
			if e := apptest.Text(t, ctx, `#invite-form .field-error`); !strings.Contains(e, "already exists") {
				t.Fatalf("refused invitation says %q", e)
			}
			if err := chromedp.Do(ctx,
				chromedp.SetValue(chromedp.CSS(`#invite-form input[name=email]`), email),
				chromedp.Click(chromedp.CSS(`#invite-send`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#users-flash`)
			if row := apptest.Text(t, ctx, `#users tr[data-email="`+email+`"]`); !strings.Contains(row, "promoter (whole chain)") {
				t.Fatalf("invited user's row: %q", row)
			}
			apptest.Screenshot(t, ctx, "users-invited-"+size.name)
			// The invitation went to the outbox with its link.
			var body string
			if err := env.App.Tx(context.Background(), tn, func(tx *gorm.DB) error {
				return tx.Raw(`SELECT body FROM mail_outbox WHERE to_email = ? AND kind = 'core.invite'`, email).Row().Scan(&body)
			}); err != nil {
				t.Fatal(err)
			}
			link := linkRe.FindString(body)
			if link == "" {
				t.Fatalf("no link in the invitation: %q", body)
			}
			// The invited person, in their own browser.
			them := apptest.Browser(t)
			if err := chromedp.Do(them,
				chromedp.EmulateViewport(size.width, size.height),
				chromedp.Navigate(link),
				chromedp.WaitVisible(chromedp.CSS(`#invite-password`)),
				chromedp.SendKeys(chromedp.CSS(`#invite-password input[name=password]`), "a long new password"),
				chromedp.SendKeys(chromedp.CSS(`#invite-password input[name=password2]`), "a long new password"),
			); err != nil {
				t.Fatal(err)
			}
			apptest.Screenshot(t, them, "invite-accept-"+size.name)
			if err := chromedp.Do(them,
				chromedp.Click(chromedp.CSS(`#invite-set`)),
				chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
				chromedp.SendKeys(chromedp.CSS(`input[name=email]`), email),
				chromedp.SendKeys(chromedp.CSS(`input[name=password]`), "a long new password"),
				chromedp.Submit(chromedp.CSS(`#login-form`)),
				chromedp.WaitVisible(chromedp.CSS(`ul.roles`)),
			); err != nil {
				t.Fatalf("the invited person could not set a password and sign in: %v", err)
			}
			if roles := apptest.Text(t, them, `ul.roles`); !strings.Contains(roles, "promoter") {
				t.Fatalf("the invited person's roles: %q", roles)
			}
			// The link works once.
			res, err := env.Try("GET", tn.Slug, link[strings.Index(link, "/portal/"):], "", nil, "Accept", "text/html")
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusGone || !strings.Contains(string(res.Body), "not valid any more") {
				t.Fatalf("a used invitation answers %d", res.Status)
			}
			// Give the finance role, then take it back.
			row := `#users tr[data-email="` + email + `"]`
			if err := chromedp.Do(ctx,
				chromedp.Navigate(host+"/portal/users"),
				chromedp.WaitVisible(chromedp.CSS(row+` form.assign`)),
				chromedp.SetValue(chromedp.CSS(row+` form.assign select[name=role]`), "finance"),
				chromedp.Submit(chromedp.CSS(row+` form.assign`)),
			); err != nil {
				t.Fatal(err)
			}
			apptest.WaitVisible(t, ctx, `#users-flash`)
			if r := apptest.Text(t, ctx, row+` td.roles`); !strings.Contains(r, "finance (whole chain)") {
				t.Fatalf("after giving finance: %q", r)
			}
			apptest.Screenshot(t, ctx, "users-roles-"+size.name)
			// The page asks first (confirm); its form goes as confirmed.
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector('`+row+` form.inline:has(input[name=role][value=finance])').submit(), true)`)); err != nil {
				t.Fatal(err)
			}
			apptest.Eventually(t, 10*time.Second, "the finance role gone", func() bool {
				r, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(row+` td.roles`)))
				return err == nil && strings.Contains(r, "promoter") && !strings.Contains(r, "finance")
			})
		})
	}
}
