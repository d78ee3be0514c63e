package calendar_test

import (
	"context"
	"net/http"
	"testing"

	"marquee/app"
	"marquee/modules/calendar"
)

func TestDemoSeed(t *testing.T) {
	env, _ := startEnv(t)
	if _, err := env.App.SeedDemo(context.Background()); err != nil {
		t.Fatalf("seed: %v", err)
	}
	login := func(slug, email string) string {
		t.Helper()
		res := env.Do(t, "POST", slug, "/api/v1/auth/login", "", map[string]string{"email": email, "password": app.DemoPassword})
		mustStatus(t, res, http.StatusOK)
		return decode[struct{ Token string }](t, res.Body).Token
	}
	type venue struct {
		ID, Name, Timezone string
	}
	owner := login("acme", "owner@acme.test")
	venues := decode[struct{ Items []venue }](t, env.Do(t, "GET", "acme", "/api/v1/venues", owner, nil).Body).Items
	if len(venues) != 3 {
		t.Fatalf("acme venues: %+v", venues)
	}
	zones := map[string]bool{}
	var downtown, other string
	for _, v := range venues {
		zones[v.Timezone] = true
		if v.Name == "Downtown Hall" {
			downtown = v.ID
		} else {
			other = v.ID
		}
	}
	if len(zones) != 3 || downtown == "" {
		t.Fatalf("venues: %+v", venues)
	}
	res := env.Do(t, "GET", "acme", "/api/v1/venues/"+downtown+"/calendar?from=2000-01-01&to=2001-01-01", owner, nil)
	mustStatus(t, res, http.StatusBadRequest) // more than 92 days: bounded
	res = env.Do(t, "GET", "acme", "/api/v1/calendar", owner, nil)
	mustStatus(t, res, http.StatusOK)
	cal := decode[struct {
		Venues []struct {
			Stages []struct {
				Events []eventOut
				Holds  []holdOut
			}
		}
	}](t, res.Body)
	var events int
	for _, v := range cal.Venues {
		for _, s := range v.Stages {
			events += len(s.Events)
		}
	}
	if events < 5 {
		t.Fatalf("this week's demo events: %d", events)
	}
	// Holds a week or more out, with 2nd and 3rd ranks.
	var allHolds, ranked int
	for _, v := range venues {
		res := env.Do(t, "GET", "acme", "/api/v1/venues/"+v.ID+"/holds", owner, nil)
		items := decode[struct{ Items []holdOut }](t, res.Body).Items
		allHolds += len(items)
		for _, h := range items {
			if h.Rank > 1 {
				ranked++
			}
		}
	}
	if allHolds < 4 || ranked == 0 {
		t.Fatalf("demo holds: %d, of which %d ranked 2nd or lower", allHolds, ranked)
	}
	// Each venue shows a challenged 1st hold, billed promoters, and one
	// show on sale on a schedule with a presale running now.
	var facts struct {
		Challenged int `gorm:"column:challenged"`
		Promoted   int `gorm:"column:promoted"`
		Presales   int `gorm:"column:presales"`
	}
	acme, err := env.App.Tenants.Lookup(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.App.DB.Raw(`SELECT
		(SELECT count(*) FROM "`+acme.Schema+`".cal_holds WHERE status = 'active' AND challenge_deadline > now()) AS challenged,
		(SELECT count(*) FROM "`+acme.Schema+`".cal_events WHERE promoter <> '') AS promoted,
		(SELECT count(*) FROM "`+acme.Schema+`".cal_events WHERE status = 'on_sale' AND on_sale_at > now()
		   AND presale_starts_at <= now() AND presale_ends_at > now() AND presale_code = ?) AS presales`, calendar.DemoPresaleCode).
		Scan(&facts).Error; err != nil {
		t.Fatal(err)
	}
	if facts.Challenged != 3 || facts.Promoted < 10 || facts.Presales != 3 {
		t.Fatalf("demo challenges, promoters, presales: %+v", facts)
	}

	// The Downtown manager sees and books there only.
	mgr := login("acme", calendar.DemoManagerEmail)
	mine := decode[struct{ Items []venue }](t, env.Do(t, "GET", "acme", "/api/v1/venues", mgr, nil).Body).Items
	if len(mine) != 1 || mine[0].ID != downtown {
		t.Fatalf("manager's venues: %+v", mine)
	}
	mustStatus(t, env.Do(t, "GET", "acme", "/api/v1/venues/"+other+"/events", mgr, nil), http.StatusForbidden)

	gowner := login("globex", "owner@globex.test")
	gv := decode[struct{ Items []venue }](t, env.Do(t, "GET", "globex", "/api/v1/venues", gowner, nil).Body).Items
	if len(gv) != 2 {
		t.Fatalf("globex venues: %+v", gv)
	}
	// Acme's venue is not globex's.
	mustStatus(t, env.Do(t, "GET", "globex", "/api/v1/venues/"+downtown, gowner, nil), http.StatusNotFound)
}
