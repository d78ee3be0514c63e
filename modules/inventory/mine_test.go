package inventory_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// A buyer finds their own active holds again (a reloaded event page shows
// its cart as theirs): only theirs, only active and not lapsed, newest first,
// per event; nobody lists holds without naming themselves.
func TestBuyerFindsOwnActiveHolds(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "mine")
	ev := s.event(t, "Mine Night")
	other := s.event(t, "Other Night")
	cfg := s.configure(t, ev, simpleSetup(1, 10, 20, nil))
	s.configure(t, other, simpleSetup(1, 10, 0, nil))
	a, b := s.buyer(t), s.buyer(t)
	// A buyer has one cart per event; their other holds are ones that are
	// not their cart (a resale reservation, a waiting-list offer): h1
	// stands for one, made one here.
	h1 := s.mustHold(t, ev, a, map[string]any{"seats": []string{"A-1-1", "A-1-2"}})
	s.sql(t, func(tx *gorm.DB) error { return tx.Exec(`UPDATE inv_holds SET cart = false WHERE id = ?`, h1.ID).Error })
	h3 := s.mustHold(t, ev, a, map[string]any{"seats": []string{"A-1-3"}})
	if res := env.Do(t, "DELETE", s.slug, "/api/v1/holds/"+h3.ID.String(), "", nil, "X-Buyer-Token", a); res.Status != http.StatusNoContent {
		t.Fatalf("release: %d %s", res.Status, res.Body)
	}
	h2 := s.mustHold(t, ev, a, map[string]any{"tier_id": tierID(t, cfg, "Floor"), "quantity": 2})
	hOther := s.mustHold(t, other, a, map[string]any{"seats": []string{"A-1-1"}})
	hb := s.mustHold(t, ev, b, map[string]any{"seats": []string{"A-1-4"}})
	if h3.ID == h1.ID || h2.ID == h1.ID || h2.ID == h3.ID {
		t.Fatalf("holds %s, %s, %s: want three (the released cart, then a new one)", h1.ID, h3.ID, h2.ID)
	}

	mine := func(tok, query string) []inventory.Hold {
		t.Helper()
		res := env.Do(t, "GET", s.slug, "/api/v1/holds"+query, "", nil, "X-Buyer-Token", tok)
		mustStatus(t, res, http.StatusOK)
		var out struct{ Holds []inventory.Hold }
		res.JSON(t, &out)
		return out.Holds
	}
	got := mine(a, "?mine&event_id="+ev)
	if len(got) != 2 || got[0].ID != h2.ID || got[1].ID != h1.ID {
		t.Fatalf("buyer a's holds of the event: %+v, want %s then %s", got, h2.ID, h1.ID)
	}
	if len(got[1].Seats) != 2 || got[1].Seats[0] != "A-1-1" || got[0].Quantity != 2 || got[0].Status != inventory.HoldActive {
		t.Fatalf("holds read back wrong: %+v", got)
	}
	if all := mine(a, "?mine"); len(all) != 3 || all[0].ID != hOther.ID {
		t.Fatalf("buyer a's holds of every event: %+v", all)
	}
	if got := mine(b, "?mine&event_id="+ev); len(got) != 1 || got[0].ID != hb.ID {
		t.Fatalf("buyer b's holds: %+v", got)
	}
	s.lapse(t, h1.ID) // lapsed, its expiry not yet run: no longer the buyer's
	if got := mine(a, "?mine&event_id="+ev); len(got) != 1 || got[0].ID != h2.ID {
		t.Fatalf("after a lapse: %+v", got)
	}

	for _, tc := range []struct{ tok, query, code string }{
		{"", "?mine", "buyer_required"},
		{"not-a-token", "?mine", "buyer_required"},
		{a, "", "mine_required"},
		{a, "?mine&event_id=nope", "invalid_event_id"},
	} {
		res := env.Do(t, "GET", s.slug, "/api/v1/holds"+tc.query, "", nil, "X-Buyer-Token", tc.tok)
		if res.Status != http.StatusBadRequest || res.Code() != tc.code {
			t.Errorf("%q %q: %d %s", tc.tok, tc.query, res.Status, res.Body)
		}
	}
}
