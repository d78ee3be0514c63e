package app_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app/apptest"
)

// Retries of a POST with one Idempotency-Key act once, even when they race.
func TestIdempotencyKeyActsOnce(t *testing.T) {
	env, _ := startProbe(t)
	tn := env.Tenant(t, apptest.UniqueSlug("idem"))
	tok := env.Login(t, tn.Slug, ownerOf(tn))
	body := map[string]int{"amount": 1500}

	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, body), http.StatusBadRequest, "idempotency_key_required")
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, body, "Idempotency-Key", "has space"), http.StatusBadRequest, "invalid_idempotency_key")

	var wg sync.WaitGroup
	results := make(chan apptest.Response, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := env.Try(http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, body, "Idempotency-Key", "charge-1")
			if err != nil {
				t.Error(err)
				return
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	var created, inProgress int
	var first string
	for res := range results {
		switch {
		case res.Status == http.StatusCreated:
			created++
			if first == "" {
				first = string(res.Body)
			} else if string(res.Body) != first {
				t.Errorf("replayed a different response: %s vs %s", res.Body, first)
			}
		case res.Status == http.StatusConflict && res.Code() == "idempotency_in_progress":
			inProgress++
		default:
			t.Errorf("unexpected %d %s", res.Status, res.Body)
		}
	}
	if created == 0 || created+inProgress != 20 {
		t.Fatalf("created %d, in progress %d", created, inProgress)
	}
	// After it finished, a retry replays the stored response.
	res := env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, body, "Idempotency-Key", "charge-1")
	if res.Status != http.StatusCreated || string(res.Body) != first || res.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", res.Status, res.Body)
	}
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, map[string]int{"amount": 9999}, "Idempotency-Key", "charge-1"),
		http.StatusUnprocessableEntity, "idempotency_key_reused")
	// Invalid input is stored as its answer too, and never acts.
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, `{"amount":"x"}`, "Idempotency-Key", "charge-2"), http.StatusBadRequest, "invalid_json")
	res = env.Do(t, http.MethodPost, tn.Slug, "/api/v1/probe/charges", tok, body, "Idempotency-Key", "charge-3")
	wantStatus(t, res, http.StatusCreated, "")

	v, err := env.App.Ledger.Verify(context.Background(), tn)
	if err != nil || v.Entries != 2 {
		t.Fatalf("ledger holds %d charges, want 2 (charge-1 once, charge-3 once): %v", v.Entries, err)
	}
}

// Events published on one instance reach a stream served by another, and
// only streams of the same tenant.
func TestRealtimeStaysInItsTenant(t *testing.T) {
	one, _ := startProbe(t)
	two, _ := startProbe(t)
	a, b := one.Tenant(t, apptest.UniqueSlug("rt-a")), one.Tenant(t, apptest.UniqueSlug("rt-b"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, one.Server.URL+"/api/v1/probe/stream", nil)
	req.Host = a.Slug + ".localhost"
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(res.Body)
	lines.Scan() // retry:
	lines.Scan() // : connected

	if err := two.App.Realtime.Publish(ctx, b, "probe", "seat", map[string]string{"who": "b"}); err != nil {
		t.Fatal(err)
	}
	if err := two.App.Realtime.Publish(ctx, a, "probe", "seat", map[string]string{"who": "a"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for lines.Scan() {
		if l := lines.Text(); strings.HasPrefix(l, "data: ") {
			got = append(got, l)
			break
		}
	}
	if len(got) != 1 || got[0] != `data: {"who":"a"}` {
		t.Fatalf("stream of %s got %v", a.Slug, got)
	}
}
