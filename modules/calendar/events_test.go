package calendar_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
)

func TestVenueAndStageCRUD(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "crud")

	res := c.do(t, "GET", "/api/v1/venues/"+c.venue, nil)
	mustStatus(t, res, http.StatusOK)
	v := decode[map[string]any](t, res.Body)
	if v["timezone"] != "America/New_York" || v["capacity"].(float64) != 2000 || v["latitude"].(float64) != 40.7 {
		t.Fatalf("venue read back wrong: %s", res.Body)
	}

	res = c.do(t, "PATCH", "/api/v1/venues/"+c.venue, map[string]any{"name": "Downtown Music Hall", "timezone": "America/Chicago"})
	mustStatus(t, res, http.StatusOK)
	if v := decode[map[string]any](t, res.Body); v["name"] != "Downtown Music Hall" || v["timezone"] != "America/Chicago" || v["address"] != "1 Main St" {
		t.Fatalf("patch: %s", res.Body)
	}

	res = c.do(t, "GET", "/api/v1/venues", nil)
	mustStatus(t, res, http.StatusOK)
	if list := decode[struct{ Items []map[string]any }](t, res.Body); len(list.Items) != 1 {
		t.Fatalf("list: %s", res.Body)
	}

	res = c.do(t, "GET", "/api/v1/venues/"+c.venue+"/stages", nil)
	mustStatus(t, res, http.StatusOK)
	if list := decode[struct{ Items []map[string]any }](t, res.Body); len(list.Items) != 2 || list.Items[0]["type"] != "main" {
		t.Fatalf("stages: %s", res.Body)
	}
	res = c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/stages/"+c.stageB, map[string]any{"capacity": 300, "type": "club"})
	mustStatus(t, res, http.StatusOK)
	if s := decode[map[string]any](t, res.Body); s["capacity"].(float64) != 300 || s["type"] != "club" || s["name"] != "Club Room" {
		t.Fatalf("stage patch: %s", res.Body)
	}
	res = c.do(t, "POST", "/api/v1/venues/"+c.venue+"/stages", map[string]any{"name": "main stage", "capacity": 10})
	if res.Status != http.StatusConflict || res.Code() != "stage_name_taken" {
		t.Fatalf("duplicate stage name: %d %s", res.Status, res.Body)
	}
	res = c.do(t, "POST", "/api/v1/venues/"+c.venue+"/stages", map[string]any{"name": "Huge", "capacity": 5000})
	if res.Status != http.StatusBadRequest {
		t.Fatalf("stage above venue capacity: %d %s", res.Status, res.Body)
	}

	// A stage with an event cannot be deleted; an empty one can.
	c.createEvent(t, c.venue, ev(c.stageA, 20, 23))
	res = c.do(t, "DELETE", "/api/v1/venues/"+c.venue+"/stages/"+c.stageA, nil)
	if res.Status != http.StatusConflict {
		t.Fatalf("delete used stage: %d %s", res.Status, res.Body)
	}
	mustStatus(t, c.do(t, "DELETE", "/api/v1/venues/"+c.venue+"/stages/"+c.stageB, nil), http.StatusNoContent)
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/stages/"+c.stageB, nil), http.StatusNotFound)

	res = c.do(t, "DELETE", "/api/v1/venues/"+c.venue, nil)
	if res.Status != http.StatusConflict || res.Code() != "venue_in_use" {
		t.Fatalf("delete venue with events: %d %s", res.Status, res.Body)
	}
	empty := c.newVenue(t, "Empty Barn", "Europe/London")
	c.newStage(t, empty, "Barn")
	mustStatus(t, c.do(t, "DELETE", "/api/v1/venues/"+empty, nil), http.StatusNoContent)
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+empty, nil), http.StatusNotFound)
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/not-a-uuid", nil), http.StatusNotFound)

	// The retry counter is exported with the platform's metrics.
	if res := env.Do(t, "GET", "", "/metrics", "", nil); !strings.Contains(string(res.Body), "marquee_calendar_tx_retries_total 0") {
		t.Error("metrics lack marquee_calendar_tx_retries_total")
	}
}

func TestEventTimesStatusAndPagination(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "events")

	// 2031-06-12T20:00:00-04:00 is midnight UTC on the 13th in New York summer time.
	res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/events", map[string]any{
		"stage_id": c.stageA, "title": "Night Owls", "category": "concert",
		"starts_at": "2031-06-12T20:00:00-04:00", "ends_at": "2031-06-12T23:30:00-04:00",
		"setup_minutes": 120, "teardown_minutes": 60, "promoter_id": nil,
	})
	mustStatus(t, res, http.StatusCreated)
	e := decode[eventOut](t, res.Body)
	if e.StartsAt != "2031-06-13T00:00:00Z" || e.StartsAtLocal != "2031-06-12T20:00:00-04:00" || e.Timezone != "America/New_York" {
		t.Fatalf("times: %s", res.Body)
	}
	if e.OccupiedFrom != "2031-06-12T22:00:00Z" || e.OccupiedFromLocal != "2031-06-12T18:00:00-04:00" || e.OccupiedTo != "2031-06-13T04:30:00Z" {
		t.Fatalf("occupied window: %s", res.Body)
	}
	if e.Status != "draft" || e.Version != 1 || res.Header.Get("Location") == "" {
		t.Fatalf("defaults: %s", res.Body)
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/events/"+e.ID, nil), http.StatusOK)

	// Across the spring-forward night each end is shown with its own offset;
	// 4 hours of wall clock are 3 real hours.
	res = c.do(t, "POST", "/api/v1/venues/"+c.venue+"/events", map[string]any{
		"stage_id": c.stageB, "title": "Clocks Change", "category": "club_night",
		"starts_at": "2031-03-08T23:00:00-05:00", "ends_at": "2031-03-09T03:00:00-04:00"})
	mustStatus(t, res, http.StatusCreated)
	if d := decode[eventOut](t, res.Body); d.StartsAt != "2031-03-09T04:00:00Z" || d.EndsAt != "2031-03-09T07:00:00Z" ||
		d.StartsAtLocal != "2031-03-08T23:00:00-05:00" || d.EndsAtLocal != "2031-03-09T03:00:00-04:00" {
		t.Fatalf("DST rendering: %s", res.Body)
	}
	// The event is not reachable through another venue's path.
	other := c.newVenue(t, "Other", "Europe/London")
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+other+"/events/"+e.ID, nil), http.StatusNotFound)

	// Status transitions are validated.
	path := "/api/v1/venues/" + c.venue + "/events/" + e.ID
	res = c.do(t, "PATCH", path, map[string]any{"status": "sold_out"})
	if res.Status != http.StatusConflict || res.Code() != "invalid_transition" {
		t.Fatalf("draft -> sold_out: %d %s", res.Status, res.Body)
	}
	for _, s := range []string{"confirmed", "on_sale", "sold_out", "on_sale", "completed"} {
		res = c.do(t, "PATCH", path, map[string]any{"status": s})
		mustStatus(t, res, http.StatusOK)
	}
	res = c.do(t, "PATCH", path, map[string]any{"status": "cancelled"})
	if res.Status != http.StatusConflict || res.Code() != "event_final" {
		t.Fatalf("completed -> cancelled: %d %s", res.Status, res.Body)
	}
	mustStatus(t, c.do(t, "PATCH", path, map[string]any{"status": "nonsense"}), http.StatusConflict)

	// Optimistic version check.
	e2 := c.createEvent(t, c.venue, ev(c.stageB, 30, 32))
	res = c.do(t, "PATCH", "/api/v1/venues/"+c.venue+"/events/"+e2.ID, map[string]any{"title": "Renamed", "version": 7})
	if res.Status != http.StatusConflict || res.Code() != "version_mismatch" {
		t.Fatalf("version mismatch: %d %s", res.Status, res.Body)
	}

	// Cursor pagination over the venue's events, by start time.
	for i := 0; i < 5; i++ {
		c.createEvent(t, c.venue, ev(c.stageA, float64(48+i*24), float64(50+i*24)))
	}
	var seen []string
	next := ""
	for pages := 0; pages < 10; pages++ {
		p := "/api/v1/venues/" + c.venue + "/events?limit=3"
		if next != "" {
			p += "&after=" + next
		}
		res = c.do(t, "GET", p, nil)
		mustStatus(t, res, http.StatusOK)
		page := decode[struct {
			Items []eventOut
			Next  string
		}](t, res.Body)
		for _, it := range page.Items {
			seen = append(seen, it.StartsAt)
		}
		if page.Next == "" {
			break
		}
		next = page.Next
	}
	if len(seen) != 8 {
		t.Fatalf("paged %d events, want 8: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Fatalf("pages out of order: %v", seen)
		}
	}
	mustStatus(t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/events?after=garbage", nil), http.StatusBadRequest)
	res = c.do(t, "GET", "/api/v1/venues/"+c.venue+"/events?status=completed", nil)
	if page := decode[struct{ Items []eventOut }](t, res.Body); len(page.Items) != 1 {
		t.Fatalf("status filter: %s", res.Body)
	}
}

func TestConflictRules(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "rules")
	events := "/api/v1/venues/" + c.venue + "/events"

	first := c.createEvent(t, c.venue, ev(c.stageA, 18, 21, "title", "Headliner"))
	// Same stage, overlapping: 409 naming the event in the way and its window.
	co := c.conflict(t, c.do(t, "POST", events, ev(c.stageA, 20, 22)))
	if len(co.Conflicts) != 1 || co.Conflicts[0].EventID != first.ID || co.Conflicts[0].Title != "Headliner" ||
		co.Conflicts[0].OccupiedFrom != at(18) || !strings.Contains(co.Detail, "Headliner") {
		t.Fatalf("409 body: %+v", co)
	}
	// Back to back is fine ('[)' ranges), before and after.
	c.createEvent(t, c.venue, ev(c.stageA, 21, 23))
	c.createEvent(t, c.venue, ev(c.stageA, 16, 18))
	// Another stage at the same time is fine.
	c.createEvent(t, c.venue, ev(c.stageB, 18, 21))

	// Buffers count: the show times do not overlap, the setup does.
	c.conflict(t, c.do(t, "POST", events, ev(c.stageA, 23.5, 25, "setup_minutes", 60)))
	c.createEvent(t, c.venue, ev(c.stageA, 24, 25, "setup_minutes", 60))
	c.conflict(t, c.do(t, "POST", events, ev(c.stageA, 14, 15.5, "teardown_minutes", 31)))

	// Cancelling frees the slot at once.
	blocker := c.createEvent(t, c.venue, ev(c.stageB, 30, 33))
	c.conflict(t, c.do(t, "POST", events, ev(c.stageB, 31, 32)))
	mustStatus(t, c.do(t, "PATCH", events+"/"+blocker.ID, map[string]any{"status": "cancelled"}), http.StatusOK)
	c.createEvent(t, c.venue, ev(c.stageB, 31, 32))
	// A cancelled event cannot come back into the schedule.
	res := c.do(t, "PATCH", events+"/"+blocker.ID, map[string]any{"status": "confirmed"})
	if res.Status != http.StatusConflict || res.Code() != "event_final" {
		t.Fatalf("revive cancelled: %d %s", res.Status, res.Body)
	}

	// Exclusive use against stage events, both ways.
	co = c.conflict(t, c.do(t, "POST", events, ev("", 19, 20)))
	if len(co.Conflicts) < 2 {
		t.Fatalf("exclusive over two stages should name both events: %+v", co)
	}
	excl := c.createEvent(t, c.venue, ev("", 40, 44, "title", "Private Gala"))
	if !excl.Exclusive || excl.StageID != nil {
		t.Fatalf("exclusive event: %+v", excl)
	}
	co = c.conflict(t, c.do(t, "POST", events, ev(c.stageB, 43, 45)))
	if co.Conflicts[0].EventID != excl.ID {
		t.Fatalf("stage event vs exclusive: %+v", co)
	}
	c.conflict(t, c.do(t, "POST", events, ev("", 41, 42)))
	c.createEvent(t, c.venue, ev("", 44, 45))

	// A stage created after the exclusive booking is still covered by it.
	late := c.newStage(t, c.venue, "Rooftop")
	co = c.conflict(t, c.do(t, "POST", events, ev(late, 39, 41)))
	if co.Conflicts[0].Title != "Private Gala" {
		t.Fatalf("late stage: %+v", co)
	}
	c.createEvent(t, c.venue, ev(late, 46, 47))

	// Another venue's schedule is independent.
	other := c.newVenue(t, "Riverside", "Europe/London")
	os := c.newStage(t, other, "Hall")
	c.createEvent(t, other, ev("", 40, 44))
	c.createEvent(t, other, ev(os, 50, 51))

	// A stage of another venue is not bookable through this one, and a
	// clash there is not revealed: 404, not a 409 naming the other event.
	res = c.do(t, "POST", events, ev(os, 60, 61))
	mustStatus(t, res, http.StatusNotFound)
	res = c.do(t, "POST", events, ev(os, 50, 51))
	mustStatus(t, res, http.StatusNotFound)
	res = c.do(t, "POST", events, ev("", 40, 41)) // this venue's own exclusive booking is named
	if co := c.conflict(t, res); co.Conflicts[0].EventID != excl.ID {
		t.Fatalf("own venue conflict: %+v", co)
	}

	// Moves go through the same constraints.
	mover := c.createEvent(t, c.venue, ev(c.stageB, 60, 62))
	res = c.do(t, "PATCH", events+"/"+mover.ID, map[string]any{"starts_at": at(40.5), "ends_at": at(41)})
	co = c.conflict(t, res)
	if co.Conflicts[0].EventID != excl.ID {
		t.Fatalf("move into exclusive: %+v", co)
	}
	res = c.do(t, "PATCH", events+"/"+mover.ID, map[string]any{"starts_at": at(61), "ends_at": at(63)}) // overlaps itself only
	mustStatus(t, res, http.StatusOK)
	if got := decode[eventOut](t, res.Body); got.Version != 2 || got.StartsAt != at(61) {
		t.Fatalf("move: %s", res.Body)
	}
	res = c.do(t, "PATCH", events+"/"+mover.ID, map[string]any{"stage_id": c.stageA})
	mustStatus(t, res, http.StatusOK)
	res = c.do(t, "PATCH", events+"/"+mover.ID, map[string]any{"exclusive": true})
	mustStatus(t, res, http.StatusOK)
	c.conflict(t, c.do(t, "POST", events, ev(late, 62, 62.5)))
	if n := c.liveOverlaps(t); n != 0 {
		t.Fatalf("%d overlapping live pairs", n)
	}
	// One occupancy row per live event, none for cancelled ones.
	var rows, live int
	err := env.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT count(*) FROM cal_occupancy`).Row().Scan(&rows); err != nil {
			return err
		}
		return tx.Raw(`SELECT count(*) FROM cal_events WHERE status <> 'cancelled'`).Row().Scan(&live)
	})
	if err != nil || live == 0 || rows != live {
		t.Fatalf("%d occupancy rows for %d live events (%v)", rows, live, err)
	}
}

func TestEventDirectory(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "directory")
	a := c.createEvent(t, c.venue, ev(c.stageA, 20, 22, "title", "First"))
	c.createEvent(t, c.venue, ev(c.stageB, 44, 46, "title", "Second", "category", "comedy"))
	c.createEvent(t, c.venue, ev("", 70, 72, "title", "Third", "status", "confirmed"))
	dir := env.App.Events()
	ctx := t.Context()
	info, err := dir.Event(ctx, c.t, uuid.MustParse(a.ID))
	if err != nil || info.Title != "First" || info.VenueName != "Downtown Hall" || info.Timezone != "America/New_York" ||
		info.VenueCapacity != 2000 || info.Latitude != 40.7 || info.StartsAt.Format(time.RFC3339) != at(20) {
		t.Fatalf("event info: %+v %v", info, err)
	}
	if _, err := dir.Event(ctx, c.t, uuid.New()); err == nil {
		t.Fatal("unknown event found")
	}
	all, err := dir.Events(ctx, c.t, app.EventFilter{VenueID: uuid.MustParse(c.venue)})
	if err != nil || len(all) != 3 {
		t.Fatalf("events: %+v %v", all, err)
	}
	page, _ := dir.Events(ctx, c.t, app.EventFilter{After: all[0].ID, Limit: 1})
	if len(page) != 1 || page[0].Title != "Second" {
		t.Fatalf("after cursor: %+v", page)
	}
	if got, _ := dir.Events(ctx, c.t, app.EventFilter{Statuses: []string{"confirmed"}}); len(got) != 1 || got[0].Title != "Third" {
		t.Fatalf("status filter: %+v", got)
	}
	if got, _ := dir.Events(ctx, c.t, app.EventFilter{Category: "comedy"}); len(got) != 1 {
		t.Fatalf("category filter: %+v", got)
	}
}
