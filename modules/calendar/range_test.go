package calendar_test

import (
	"net/http"
	"testing"
)

// Numbers out of range are refused and change nothing: a version is 1 or
// more, never a way to skip the optimistic check.
func TestEventPatchRefusesOutOfRangeVersion(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, mod, "range")
	e := c.createEvent(t, c.venue, ev(c.stageA, 40, 42))
	path := "/api/v1/venues/" + c.venue + "/events/" + e.ID
	for _, v := range []any{-1, 0, -9007199254740991, 1e20, 2.5, "1"} {
		res := c.do(t, "PATCH", path, map[string]any{"title": "Renamed", "version": v})
		if res.Status != http.StatusBadRequest {
			t.Fatalf("version %v: %d %s", v, res.Status, res.Body)
		}
	}
	res := c.do(t, "GET", path, nil)
	mustStatus(t, res, http.StatusOK)
	if got := decode[eventOut](t, res.Body); got.Title != e.Title {
		t.Fatalf("a refused patch renamed the event to %q", got.Title)
	}
	mustStatus(t, c.do(t, "PATCH", path, map[string]any{"title": "Renamed", "version": 1}), http.StatusOK)
}
