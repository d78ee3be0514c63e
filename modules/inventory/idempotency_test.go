package inventory_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"gorm.io/gorm"

	"marquee/modules/inventory"
)

// Retries of one hold request — one after the other or racing — get the
// same hold, and the seats are held once; the key with another body is refused.
func TestHoldIdempotencyKeyInTheHoldTransaction(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "idem")
	ev := s.event(t, "Retry Night")
	s.configure(t, ev, map[string]any{
		"zones":  []map[string]any{{"name": "Stalls", "kind": "reserved"}},
		"tiers":  []map[string]any{{"name": "Stalls", "zone": "Stalls", "price": 5000, "currency": "EUR"}},
		"quotas": map[string]int{"web": 10},
		"layout": map[string]any{"sections": []map[string]any{{"name": "A", "zone": "Stalls", "rows": []map[string]any{{"label": "1", "seats": 10}}}}},
	})
	buyer := s.buyer(t)
	key := uuid.NewString()
	body := map[string]any{"seats": []string{"A-1-1", "A-1-2"}}
	post := func(b any) (int, string, string) {
		res, err := env.Try("POST", s.slug, "/api/v1/events/"+ev+"/holds", "", b, "Idempotency-Key", key, inventory.BuyerHeader, buyer)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		var h inventory.Hold
		if res.Status == http.StatusCreated {
			res.JSON(t, &h)
		}
		return res.Status, h.ID.String(), res.Code()
	}
	var wg sync.WaitGroup
	ids := make([]string, 12)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, id, code := post(body)
			if st != http.StatusCreated {
				t.Errorf("retry %d: %d %s", i, st, code)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("retries got different holds: %v", ids)
		}
	}
	if st, id, _ := post(body); st != http.StatusCreated || id != ids[0] {
		t.Fatalf("later retry: %d %s, want hold %s", st, id, ids[0])
	}
	if st, _, code := post(map[string]any{"seats": []string{"A-1-3"}}); st != http.StatusUnprocessableEntity || code != "idempotency_key_reused" {
		t.Fatalf("key reused for another cart: %d %s", st, code)
	}
	if got := s.seatState(t, ev, "A-1-3"); got != "available" {
		t.Fatalf("seat of the refused request is %s", got)
	}
	var holds int64
	if err := env.App.Tx(t.Context(), s.t, func(tx *gorm.DB) error {
		return tx.Raw("SELECT count(*) FROM inv_holds WHERE event_id = ?", ev).Row().Scan(&holds)
	}); err != nil {
		t.Fatal(err)
	}
	if holds != 1 {
		t.Fatalf("%d holds made, want 1", holds)
	}
}
