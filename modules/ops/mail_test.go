package ops_test

import (
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/migrations"
	"marquee/policies"
)

// setContacts gives the chain its ops contacts: one chain-wide for both
// kinds, one for the event's venue for alerts only, one for another venue.
func (c *chain) setContacts(t testing.TB) {
	t.Helper()
	other := c.id(t, c.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Other Hall", "timezone": "Europe/Berlin", "capacity": 900}))
	mustStatus(t, c.do(t, "PUT", "/api/v1/ops/contacts", map[string]any{"contacts": []any{
		map[string]any{"email": "duty@" + c.slug + ".test", "name": "Duty manager"},
		map[string]any{"email": "floor@" + c.slug + ".test", "venue_id": c.venue, "incidents": false},
		map[string]any{"email": "elsewhere@" + c.slug + ".test", "venue_id": other},
	}}), http.StatusOK)
}

// Capacity alerts are mailed through the core's outbox, in the alert's
// transaction: once per alert and contact of the venue, never to another
// venue's contacts, and the mail is still queued once when thirty readings
// race across the threshold.
func TestAlertsMailedThroughCore(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "amail")
	c.setContacts(t)
	for i, n := range []int{50, 91, 100, 80, 92} {
		c.push(t, map[string]any{"zone": "Floor", "source": "manual", "count": n, "at": ago(time.Duration(60-i) * time.Second)})
	}
	// 90% twice and 100% once: three alerts, each to duty and floor.
	if n := c.count(t, `SELECT count(*) FROM ops_alerts`); n != 3 {
		t.Fatalf("%d alerts", n)
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE kind = 'ops.capacity_alert' AND ref = ?`, c.event); n != 6 {
		t.Fatalf("%d alert mails, want 6", n)
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE to_email LIKE 'elsewhere@%'`); n != 0 {
		t.Fatal("another venue's contact was mailed")
	}
	if n := c.count(t, `SELECT count(*) FROM ops_outbox`); n != 0 {
		t.Fatalf("ops still writes its own outbox: %d rows", n)
	}
	var subject, body string
	if err := e.App.Tx(t.Context(), c.t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT subject, body FROM mail_outbox WHERE kind = 'ops.capacity_alert' AND to_email LIKE 'floor@%' ORDER BY created_at LIMIT 1`).Row().Scan(&subject, &body)
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(subject, "Floor at 90%") || !strings.Contains(body, "91 inside of 100") || !strings.Contains(body, "/portal/ops/events/"+c.event) {
		t.Fatalf("alert mail: %q %q", subject, body)
	}
	// The alert and its mail commit together: a race raises one alert on
	// the balcony and queues its mails once.
	before := c.count(t, `SELECT count(*) FROM mail_outbox`)
	errs := make(chan error, 30)
	for i := range 30 {
		go func() {
			res, err := e.Try("POST", c.slug, "/api/v1/events/"+c.event+"/occupancy", c.tok,
				map[string]any{"zone": "Balcony", "source": fmt.Sprintf("turnstile:m%d", i), "delta": 2, "at": ago(time.Second)})
			if err == nil && res.Status != http.StatusOK {
				err = fmt.Errorf("push: %d %s", res.Status, res.Body)
			}
			errs <- err
		}()
	}
	for range 30 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	alerts := c.count(t, `SELECT count(*) FROM ops_alerts a JOIN ops_zones z ON z.id = a.zone_id WHERE z.name = 'Balcony'`)
	if alerts != 2 { // 80% and 100% of 50, each once
		t.Fatalf("%d balcony alerts, want 2", alerts)
	}
	if got := c.count(t, `SELECT count(*) FROM mail_outbox`) - before; got != 2*alerts {
		t.Fatalf("%d mails for %d alerts and 2 contacts", got, alerts)
	}
}

// An incident report mails the venue's incident contacts in its own
// transaction; a confidential one says only that there is one.
func TestIncidentMailedThroughCore(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "imail")
	c.setContacts(t)
	e.User(t, c.t, "door@"+c.slug+".test", policies.RoleDoorStaff, c.venue)
	door := e.Login(t, c.slug, "door@"+c.slug+".test")
	base := "/api/v1/events/" + c.event + "/incidents"
	mustStatus(t, e.Do(t, "POST", c.slug, base, door, map[string]any{"category": "crowd", "severity": "medium", "zone": "Floor",
		"description": "Crush at the barrier"}), http.StatusCreated)
	mustStatus(t, e.Do(t, "POST", c.slug, base, door, map[string]any{"category": "medical", "severity": "high", "zone": "Floor",
		"description": "Guest named Jane Roe fainted", "confidential": true}), http.StatusCreated)
	// Only the chain-wide contact takes incidents (floor@ takes alerts only).
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE kind = 'ops.incident'`); n != 2 {
		t.Fatalf("%d incident mails, want 2", n)
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE kind = 'ops.incident' AND to_email <> ?`, "duty@"+c.slug+".test"); n != 0 {
		t.Fatal("an incident went to a contact that does not take them")
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE body LIKE '%Crush at the barrier%'`); n != 1 {
		t.Fatal("the open incident's mail does not say what happened")
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE body LIKE '%Jane Roe%' OR subject LIKE '%Jane Roe%'`); n != 0 {
		t.Fatal("a confidential incident's details left in a mail")
	}
	// Bad contact lists change nothing.
	none := map[string]int{"ops_contacts": 0}
	put := func(name string, contacts ...any) apptest.Scenario {
		return apptest.Scenario{Name: name, Method: "PUT", Path: "/api/v1/ops/contacts", Tenant: c.slug, Token: c.tok,
			Body: map[string]any{"contacts": contacts}, Status: 400, Code: "invalid_ops_contacts", Changes: none}
	}
	apptest.RunScenarios(t, e.Env, []apptest.Scenario{
		put("bad address", map[string]any{"email": "not an address"}),
		put("unknown venue", map[string]any{"email": "a@b.test", "venue_id": "01900000-0000-7000-8000-0000000000ff"}),
		put("twice", map[string]any{"email": "a@b.test"}, map[string]any{"email": "A@b.test"}),
		put("nothing to receive", map[string]any{"email": "a@b.test", "alerts": false, "incidents": false}),
		{Name: "wrong type", Method: "PUT", Path: "/api/v1/ops/contacts", Tenant: c.slug, Token: c.tok, Body: `{"contacts":[{"email":7}]}`,
			Status: 400, Problem: true, Changes: none},
		{Name: "door staff may not", Method: "PUT", Path: "/api/v1/ops/contacts", Tenant: c.slug, Token: door,
			Body: map[string]any{"contacts": []any{}}, Status: 403, Changes: none},
	})
}

// gooseUp is the Up part of a migration file.
func gooseUp(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	up, down := strings.Index(s, "-- +goose Up"), strings.Index(s, "-- +goose Down")
	if up < 0 || down < up {
		t.Fatalf("%s: no Up part", name)
	}
	return s[up:down]
}

// What ops' own outbox still held when the release moving to the core's
// mail rolls out is queued there once per chain-wide alert contact (00271),
// again without doubles by the contract step, which also catches what the
// old release wrote meanwhile and drops the table.
func TestOpsOutboxMovesToCoreMail(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "omove")
	c.setContacts(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if err := e.App.Tx(t.Context(), c.t, func(tx *gorm.DB) error { return tx.Exec(sql, args...).Error }); err != nil {
			t.Fatal(err)
		}
	}
	payload := `{"event_id":"` + c.event + `","zone":"Floor","percent":90,"inside":91,"capacity":100,"source":"manual","raised_at":"2026-01-01T20:00:00Z"}`
	exec(`INSERT INTO ops_outbox (topic, payload) VALUES ('capacity_alert', ?::jsonb), ('capacity_alert', ?::jsonb)`, payload, payload)
	exec(`INSERT INTO ops_outbox (topic, payload, delivered_at) VALUES ('capacity_alert', ?::jsonb, now())`, payload)
	exec(gooseUp(t, migrations.TenantFS(), "00271_ops_mail_to_core.sql"))
	exec(gooseUp(t, migrations.TenantFS(), "00271_ops_mail_to_core.sql")) // a rerun queues nothing more
	moved := `SELECT count(*) FROM mail_outbox WHERE purpose_key LIKE 'ops\_outbox:%'`
	// Two undelivered rows, one chain-wide contact taking alerts.
	if n := c.count(t, moved); n != 2 {
		t.Fatalf("%d mails moved, want 2", n)
	}
	if n := c.count(t, moved+` AND to_email = ? AND body LIKE '%91 inside of 100%' AND ref = ?`, "duty@"+c.slug+".test", c.event); n != 2 {
		t.Fatal("moved mails are not addressed or worded as the alert")
	}
	// The old release writes one more during the rollout; the contract step moves it and drops the table.
	exec(`INSERT INTO ops_outbox (topic, payload) VALUES ('capacity_alert', ?::jsonb)`, payload)
	exec(gooseUp(t, migrations.ContractTenantFS(), "00902_ops_outbox_contract.sql"))
	if n := c.count(t, moved); n != 3 {
		t.Fatalf("%d mails after the contract step, want 3", n)
	}
	if n := c.count(t, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'ops_outbox'`); n != 0 {
		t.Fatal("ops_outbox is still there")
	}
}
