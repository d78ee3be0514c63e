package inventory_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
	"marquee/policies"
)

// doorNight is an event with a reserved zone (Stalls) and a GA floor
// (Floor), and paid tickets on both.
type doorNight struct {
	*shop
	ev     string
	inv    inventory.Inventory
	stalls []inventory.Ticket
	floor  []inventory.Ticket
}

// newDoorNight sells seats stalls seats and ga floor places, paid.
func newDoorNight(t testing.TB, s *shop, seats, ga int) *doorNight {
	t.Helper()
	n := &doorNight{shop: s, ev: s.event(t, "Door Night")}
	n.inv = s.configure(t, n.ev, simpleSetup(1, max(seats, 1), ga+10, nil))
	if seats > 0 {
		var ids []string
		for i := 1; i <= seats; i++ {
			ids = append(ids, fmt.Sprintf("A-1-%d", i))
		}
		n.stalls = n.buy(t, map[string]any{"seats": ids})
	}
	for left := ga; left > 0; left -= 10 {
		n.floor = append(n.floor, n.buy(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": min(10, left)})...)
	}
	return n
}

// buy holds, orders and pays, and returns the order's tickets.
func (n *doorNight) buy(t testing.TB, hold map[string]any) []inventory.Ticket {
	t.Helper()
	b := n.buyer(t)
	h := n.mustHold(t, n.ev, b, hold)
	o := n.order(t, b, h.ID)
	mustStatus(t, n.webhook(t, "evt_"+uuid.NewString(), "payment_intent.succeeded", o.Order), http.StatusOK)
	res := n.env.Do(t, "GET", n.slug, "/api/v1"+o.OrderURL, "", nil)
	mustStatus(t, res, http.StatusOK)
	var paid orderOut
	res.JSON(t, &paid)
	return paid.Tickets
}

func (n *doorNight) zone(t testing.TB, name string) uuid.UUID {
	t.Helper()
	for _, z := range n.inv.Zones {
		if z.Name == name {
			return z.ID
		}
	}
	t.Fatalf("no zone %s", name)
	return uuid.Nil
}

type scanOut struct {
	inventory.ScanResult
	Code string `json:"code"`
}

// scan posts one scan as token tok (the shop's owner when empty).
func (n *doorNight) scan(t testing.TB, tok string, body map[string]any) (int, scanOut) {
	t.Helper()
	if tok == "" {
		tok = n.tok
	}
	for k, v := range map[string]any{"type": "entry", "gate": "North", "device_id": "dev-1"} {
		if _, ok := body[k]; !ok {
			body[k] = v
		}
	}
	if _, ok := body["nonce"]; !ok {
		body["nonce"] = uuid.NewString()
	}
	res := n.env.Do(t, "POST", n.slug, "/api/v1/events/"+n.ev+"/checkins", tok, body)
	var out scanOut
	res.JSON(t, &out)
	return res.Status, out
}

func (n *doorNight) mustScan(t testing.TB, token, typ, want string, extra ...any) scanOut {
	t.Helper()
	body := map[string]any{"token": token, "type": typ}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	st, out := n.scan(t, "", body)
	if st != http.StatusOK || out.Result != want {
		t.Fatalf("%s scan: %d %+v, want %s", typ, st, out, want)
	}
	return out
}

func (n *doorNight) attendance(t testing.TB) inventory.Attendance {
	t.Helper()
	res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/attendance", nil)
	mustStatus(t, res, http.StatusOK)
	var a inventory.Attendance
	res.JSON(t, &a)
	return a
}

func zoneOf(t testing.TB, a inventory.Attendance, name string) inventory.ZoneAttendance {
	t.Helper()
	for _, z := range a.Zones {
		if z.Zone == name {
			return z
		}
	}
	t.Fatalf("no zone %s in %+v", name, a)
	return inventory.ZoneAttendance{}
}

// logFold recomputes, from the entry/exit log alone, each zone's admitted
// tickets and who is inside (entries minus exits per ticket), for checking
// the attendance the door serves against its one source of truth.
func (n *doorNight) logFold(t testing.TB) (admitted, inside int64) {
	t.Helper()
	admitted = n.count(t, `SELECT count(DISTINCT ticket_id) FROM inv_checkins WHERE event_id = ? AND result = 'admit' AND annulled_at IS NULL`, n.ev)
	inside = n.count(t, `SELECT coalesce(sum(d), 0) FROM (SELECT ticket_id, sum(CASE result WHEN 'admit' THEN 1 WHEN 'exited' THEN -1 END) AS d
		FROM inv_checkins WHERE event_id = ? AND successful AND annulled_at IS NULL GROUP BY ticket_id) x`, n.ev)
	return admitted, inside
}

// The door end to end: admit, the duplicate with who let them in, exits
// and re-entry by the event's rule, gates that serve one zone, another
// event's ticket, a retried nonce, annulment, and attendance that matches
// the log.
func TestCheckInAtTheDoor(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "door")
	n := newDoorNight(t, s, 2, 3)
	a, b := n.stalls[0].Token, n.floor[0].Token

	first := n.mustScan(t, a, "entry", inventory.ResultAdmit, "gate", "North", "device_id", "dev-A")
	if first.ZoneID != n.zone(t, "Stalls") || first.TicketID != n.stalls[0].ID || first.Replayed || first.ReceivedAt.IsZero() {
		t.Fatalf("admit: %+v", first)
	}
	dup := n.mustScan(t, a, "entry", inventory.ResultAlreadyAdmitted, "gate", "South", "device_id", "dev-B")
	if dup.Admission == nil || dup.Admission.CheckinID != first.CheckinID || dup.Admission.Gate != "North" || dup.Admission.DeviceID != "dev-A" {
		t.Fatalf("already admitted without the admitting scan: %+v", dup)
	}
	// Out, and (re-entry off by default) not in again.
	n.mustScan(t, a, "exit", inventory.ResultExited)
	n.mustScan(t, a, "exit", inventory.ResultNotInside)
	n.mustScan(t, a, "entry", inventory.ResultAlreadyAdmitted)
	// With re-entry on, in again; and a gate that serves the floor only.
	res := n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"reentry": true,
		"gates": []map[string]any{{"name": "Floor Gate", "zones": []string{n.zone(t, "Floor").String()}}}})
	mustStatus(t, res, http.StatusOK)
	n.mustScan(t, a, "entry", inventory.ResultAdmit)
	n.mustScan(t, n.stalls[1].Token, "entry", inventory.ResultWrongZone, "gate", "Floor Gate")
	n.mustScan(t, b, "entry", inventory.ResultAdmit, "gate", "Floor Gate")

	// The same nonce again: the first answer, and one record.
	nonce := uuid.NewString()
	one := n.mustScan(t, n.floor[1].Token, "entry", inventory.ResultAdmit, "nonce", nonce)
	again := n.mustScan(t, n.floor[1].Token, "entry", inventory.ResultAdmit, "nonce", nonce)
	if !again.Replayed || again.CheckinID != one.CheckinID {
		t.Fatalf("replay: %+v, first %+v", again, one)
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE nonce = ?`, nonce); c != 1 {
		t.Fatalf("%d records for one nonce", c)
	}

	// Another event's ticket, same chain.
	other := newDoorNight(t, s, 0, 1)
	n.mustScan(t, other.floor[0].Token, "entry", inventory.ResultWrongEvent)

	// Annul: the same device, the latest passage only.
	c := n.mustScan(t, n.floor[2].Token, "entry", inventory.ResultAdmit, "device_id", "turnstile-3")
	annul := func(dev string) (int, string) {
		res := n.do(t, "POST", "/api/v1/events/"+n.ev+"/checkins/"+c.CheckinID.String()+"/annul", map[string]any{"device_id": dev})
		return res.Status, res.Code()
	}
	if st, code := annul("dev-1"); st != http.StatusForbidden || code != "annul_other_device" {
		t.Fatalf("annul from another device: %d %s", st, code)
	}
	if st, _ := annul("turnstile-3"); st != http.StatusOK {
		t.Fatalf("annul: %d", st)
	}
	if st, _ := annul("turnstile-3"); st != http.StatusOK {
		t.Fatalf("annul twice: %d", st)
	}
	c = n.mustScan(t, n.floor[2].Token, "entry", inventory.ResultAdmit, "device_id", "turnstile-3") // the turnstile turns this time
	n.mustScan(t, n.floor[2].Token, "exit", inventory.ResultExited)
	n.mustScan(t, n.floor[2].Token, "entry", inventory.ResultAdmit) // re-entry is on
	if st, code := annul("turnstile-3"); st != http.StatusConflict || code != "annul_not_latest" {
		t.Fatalf("annul of an earlier passage: %d %s", st, code)
	}

	// Attendance: stalls 2 sold, 1 admitted and inside; floor 3 sold
	// (the floor's 10 extra places are unsold), 3 admitted, 3 inside.
	at := n.attendance(t)
	st, fl := zoneOf(t, at, "Stalls"), zoneOf(t, at, "Floor")
	if st.Sold != 2 || st.Admitted != 1 || st.Inside != 1 || fl.Sold != 3 || fl.Admitted != 3 || fl.Inside != 3 || at.Inside != 4 || at.LastScan == nil {
		t.Fatalf("attendance %+v", at)
	}
	if adm, in := n.logFold(t); adm != int64(at.Admitted) || in != int64(at.Inside) {
		t.Fatalf("log says admitted %d inside %d, attendance %+v", adm, in, at)
	}
	// The typed contract answers the same.
	tn := s.t
	viaContract, err := env.App.Attendance().Attendance(context.Background(), tn, uuid.MustParse(n.ev))
	if err != nil || viaContract.Inside != at.Inside || len(viaContract.Zones) != 2 {
		t.Fatalf("app.Attendance: %+v %v", viaContract, err)
	}
	// Every record keeps both times, the device and the gate.
	res = n.do(t, "GET", "/api/v1/events/"+n.ev+"/checkins?limit=3", nil)
	mustStatus(t, res, http.StatusOK)
	var page struct {
		Items []inventory.Checkin `json:"items"`
		Next  string              `json:"next"`
	}
	res.JSON(t, &page)
	if len(page.Items) != 3 || page.Next == "" || page.Items[0].ReceivedAt.Before(page.Items[1].ReceivedAt) || page.Items[0].Gate == "" {
		t.Fatalf("log page %+v", page)
	}
}

// Validity lies in the token: a window set for the event goes into tokens
// issued from then on, and a scan outside it is refused before the
// database; a forced (offline) scan is judged when it happened.
func TestCheckInValidityWindow(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "valid")
	n := newDoorNight(t, s, 0, 2)
	from, until := time.Now().Add(time.Hour).UTC().Truncate(time.Second), time.Now().Add(5*time.Hour).UTC().Truncate(time.Second)
	res := n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"valid_from": from, "valid_until": until})
	mustStatus(t, res, http.StatusOK)
	early, err := inv.Service().ReissueTicket(context.Background(), s.t, n.floor[0].ID, inventory.TicketHolder{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.ParseTicketV2(early.Token)
	if err != nil || !c.NotBefore.Equal(from) || !c.Expires.Equal(until) {
		t.Fatalf("claims %+v %v", c, err)
	}
	n.mustScan(t, early.Token, "entry", inventory.ResultNotYetValid)
	// A window that ended an hour ago: online the token has expired; a
	// forced (offline) scan made two hours ago was inside it.
	from, until = time.Now().Add(-3*time.Hour).UTC().Truncate(time.Second), time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	mustStatus(t, n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"valid_from": from, "valid_until": until}), http.StatusOK)
	late, err := inv.Service().ReissueTicket(context.Background(), s.t, early.ID, inventory.TicketHolder{})
	if err != nil {
		t.Fatal(err)
	}
	n.mustScan(t, early.Token, "entry", inventory.ResultRevoked)
	n.mustScan(t, late.Token, "entry", inventory.ResultExpired)
	n.mustScan(t, late.Token, "entry", inventory.ResultNotYetValid, "force", true, "scanned_at", time.Now().Add(-4*time.Hour))
	n.mustScan(t, late.Token, "entry", inventory.ResultAdmit, "force", true, "scanned_at", time.Now().Add(-2*time.Hour))
	if f := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND forced AND result = 'admit'`, late.ID); f != 1 {
		t.Fatalf("%d forced admissions recorded", f)
	}
	// The old ticket's token (re-issued) is revoked.
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultRevoked)
	res = n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"valid_from": until, "valid_until": from})
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_validity" {
		t.Fatalf("backwards window: %d %s", res.Status, res.Body)
	}
}

// Re-issuing a ticket revokes its old token in the same transaction: the
// old one answers revoked online and appears in the revocation delta; the
// new one admits. Of two re-issues racing, one wins.
func TestReissueRevokesTheOldToken(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "reissue")
	n := newDoorNight(t, s, 1, 2)
	ctx, svc := context.Background(), inv.Service()
	old := n.stalls[0]
	nw, err := svc.ReissueTicket(ctx, s.t, old.ID, inventory.TicketHolder{Name: "New Holder", Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if nw.ID == old.ID || nw.Token == old.Token || nw.Replaces == nil || *nw.Replaces != old.ID || nw.HolderName != "New Holder" ||
		nw.SeatID == nil || *nw.SeatID != *old.SeatID || nw.Status != "valid" {
		t.Fatalf("re-issued %+v from %+v", nw, old)
	}
	if _, err := svc.ReissueTicket(ctx, s.t, old.ID, inventory.TicketHolder{}); err == nil || !strings.Contains(err.Error(), "void or re-issued") {
		t.Fatalf("re-issuing a re-issued ticket: %v", err)
	}
	n.mustScan(t, old.Token, "entry", inventory.ResultRevoked)
	n.mustScan(t, nw.Token, "entry", inventory.ResultAdmit)

	// Race: ten re-issues of one ticket at once, one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.ReissueTicket(ctx, s.t, n.floor[0].ID, inventory.TicketHolder{}); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d re-issues of one ticket won", wins)
	}
	// A refund voids a ticket: it is revoked too.
	mustStatus(t, n.do(t, "POST", "/api/v1/orders/"+n.floor[1].OrderID.String()+"/refund", map[string]string{"reason": "ill"}, "Idempotency-Key", uuid.NewString()), http.StatusOK)

	res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/revocations?since=0&limit=2", nil)
	mustStatus(t, res, http.StatusOK)
	var r inventory.Revocations
	res.JSON(t, &r)
	// Revoked: the stalls ticket, the floor ticket re-issued, and both floor
	// tickets of the refunded order (the re-issued one and its sibling).
	if len(r.Revocations) != 2 || !r.More || r.Revocations[0].Seq != 1 || r.Revocations[1].Seq != 2 || r.Revocations[0].TicketID != old.ID ||
		r.Revocations[0].Reason != "reissued" || r.Until != 2 {
		t.Fatalf("first page %+v", r)
	}
	res = n.do(t, "GET", fmt.Sprintf("/api/v1/events/%s/revocations?since=%d", n.ev, r.Until), nil)
	mustStatus(t, res, http.StatusOK)
	var rest inventory.Revocations
	res.JSON(t, &rest)
	if len(rest.Revocations) != 2 || rest.More || rest.Revocations[0].Seq != 3 || rest.Revocations[1].Reason != "voided" {
		t.Fatalf("delta %+v", rest)
	}
	res = n.do(t, "GET", "/api/v1/events/"+n.ev+"/revocations?since=-1", nil)
	if res.Status != http.StatusBadRequest || res.Code() != "invalid_since" {
		t.Fatalf("since -1: %d %s", res.Status, res.Body)
	}
}

// A rotation adds a key: tokens under the old one keep scanning until their
// tickets are re-issued; the public key lists both; rotating with reissue
// moves every ticket to the new key and revokes the old tokens.
func TestTicketKeyRotation(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "rotate")
	n := newDoorNight(t, s, 0, 3)
	res := n.do(t, "POST", "/api/v1/events/"+n.ev+"/ticket-keys", map[string]any{})
	mustStatus(t, res, http.StatusCreated)
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAdmit)
	fresh := n.buy(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 1})
	if c, _ := inventory.ParseTicketV2(fresh[0].Token); c.KeyID != 2 {
		t.Fatalf("new ticket under key %d", c.KeyID)
	}
	res = env.Do(t, "GET", s.slug, "/api/v1/events/"+n.ev+"/public-key", "", nil)
	mustStatus(t, res, http.StatusOK)
	var pk inventory.PublicKey
	res.JSON(t, &pk)
	if len(pk.Keys) != 2 || pk.KeyID != 2 || !pk.Keys[1].Current || pk.Keys[0].Current || pk.PublicKey != pk.Keys[1].PublicKey {
		t.Fatalf("keys %+v", pk)
	}
	// Each token verifies offline with the key it names.
	for _, tk := range append(slices.Clone(n.floor), fresh...) {
		c, _ := inventory.ParseTicketV2(tk.Token)
		raw, _ := base64.RawURLEncoding.DecodeString(pk.Keys[c.KeyID-1].PublicKey)
		if _, err := inventory.VerifyTicketV2(ed25519.PublicKey(raw), s.slug, tk.Token); err != nil {
			t.Fatalf("offline verify of %s: %v", tk.ID, err)
		}
	}
	res = n.do(t, "POST", "/api/v1/events/"+n.ev+"/ticket-keys", map[string]any{"reissue": true})
	mustStatus(t, res, http.StatusCreated)
	var rot inventory.KeyRotation
	res.JSON(t, &rot)
	if rot.KeyID != 3 || rot.Reissued != 4 {
		t.Fatalf("rotation %+v", rot)
	}
	n.mustScan(t, n.floor[1].Token, "entry", inventory.ResultRevoked)
	if v := n.count(t, `SELECT count(*) FROM inv_tickets WHERE event_id = ? AND status = 'valid' AND key_id <> 3`, n.ev); v != 0 {
		t.Fatalf("%d valid tickets under old keys", v)
	}
	// Someone holding the old key 1 signs a token for a re-issued, valid
	// ticket (ids are in every token): refused, the ticket is key 3's now.
	var reissued string
	s.sql(t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT token FROM inv_tickets WHERE event_id = ? AND status = 'valid' AND key_id = 3 ORDER BY id LIMIT 1`, n.ev).Scan(&reissued).Error
	})
	claims, err := inventory.ParseTicketV2(reissued)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := inv.SignTicketWithKey(t.Context(), s.t, 1, claims)
	if err != nil {
		t.Fatal(err)
	}
	n.mustScan(t, forged, "entry", inventory.ResultRevoked)
	n.mustScan(t, reissued, "entry", inventory.ResultAdmit)
	// The admitted holder's ticket was re-issued: the new one is a new
	// ticket, outside (its door state starts afresh).
	if r := n.count(t, `SELECT count(*) FROM inv_ticket_revocations WHERE event_id = ?`, n.ev); r != 4 {
		t.Fatalf("%d revocations", r)
	}
}

// Tokens issued before v2 (JSON claims under the chain's one key) still
// scan.
func TestV1TokensStillScan(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "legacy")
	n := newDoorNight(t, s, 0, 1)
	tk := n.floor[0]
	v1, err := inv.SignV1Ticket(context.Background(), s.t, tk)
	if err != nil || !strings.Contains(v1, ".") {
		t.Fatalf("v1 token %q: %v", v1, err)
	}
	n.mustScan(t, v1, "entry", inventory.ResultAdmit)
	n.mustScan(t, tk.Token, "entry", inventory.ResultAlreadyAdmitted) // one ticket, whichever token
	res := env.Do(t, "GET", s.slug, "/api/v1/events/"+n.ev+"/public-key", "", nil)
	var pk inventory.PublicKey
	res.JSON(t, &pk)
	raw, _ := base64.RawURLEncoding.DecodeString(pk.LegacyKey)
	if c, err := inventory.VerifyToken(ed25519.PublicKey(raw), v1); err != nil || c.TicketID != tk.ID.String() {
		t.Fatalf("v1 offline: %+v %v", c, err)
	}
}

// Twenty devices scan one ticket at the same instant: one admits, the
// others answer already_admitted naming that admission. Ten retries of one
// nonce at once: one record, one answer.
func TestCheckInRaces(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "doorrace")
	n := newDoorNight(t, s, 0, 2)
	scanAll := func(k int, token string, nonce func(i int) string) []scanOut {
		outs := make([]scanOut, k)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := env.Try("POST", s.slug, "/api/v1/events/"+n.ev+"/checkins", s.tok, map[string]any{"token": token, "type": "entry",
					"gate": fmt.Sprintf("G%d", i%4), "device_id": fmt.Sprintf("dev-%d", i), "nonce": nonce(i)})
				if err != nil || res.Status != http.StatusOK {
					t.Errorf("scan %d: %v %d %s", i, err, res.Status, res.Body)
					return
				}
				res.JSON(t, &outs[i])
			}()
		}
		close(start)
		wg.Wait()
		return outs
	}
	outs := scanAll(20, n.floor[0].Token, func(int) string { return uuid.NewString() })
	var admits []scanOut
	for _, o := range outs {
		switch o.Result {
		case inventory.ResultAdmit:
			admits = append(admits, o)
		case inventory.ResultAlreadyAdmitted:
		default:
			t.Fatalf("unexpected answer %+v", o)
		}
	}
	if len(admits) != 1 {
		t.Fatalf("%d admits of one ticket", len(admits))
	}
	for _, o := range outs {
		if o.Result == inventory.ResultAlreadyAdmitted && (o.Admission == nil || o.Admission.CheckinID != admits[0].CheckinID) {
			t.Fatalf("duplicate without the admission: %+v (admit %s)", o, admits[0].CheckinID)
		}
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit'`, n.floor[0].ID); c != 1 {
		t.Fatalf("%d admissions logged", c)
	}
	if c := n.count(t, `SELECT entries FROM inv_door_state WHERE ticket_id = ?`, n.floor[0].ID); c != 1 {
		t.Fatalf("%d entries", c)
	}

	nonce := uuid.NewString()
	outs = scanAll(10, n.floor[1].Token, func(int) string { return nonce })
	for _, o := range outs {
		if o.Result != inventory.ResultAdmit || o.CheckinID != outs[0].CheckinID {
			t.Fatalf("same nonce, different answers: %+v vs %+v", o, outs[0])
		}
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ?`, n.floor[1].ID); c != 1 {
		t.Fatalf("%d records for one nonce", c)
	}
}

// Forged, truncated, garbled, other chains' tokens and tokens signed by a
// key the event does not have are refused as a problem (result invalid),
// and nothing is written.
func TestCheckInRefusesBadTokens(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "forge")
	n := newDoorNight(t, s, 0, 1)
	o := newShop(t, env, inv, "forgeother")
	on := newDoorNight(t, o, 0, 1)
	good := n.floor[0].Token
	c, _ := inventory.ParseTicketV2(good)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flipped := slices.Clone(raw)
	flipped[20] ^= 1 // the ticket id
	cases := map[string]string{
		"truncated":          good[:len(good)-10],
		"garbled":            strings.Repeat("!", len(good)),
		"one bit changed":    base64.RawURLEncoding.EncodeToString(flipped),
		"foreign key":        inventory.SignTicketV2(priv, s.slug, c),
		"unknown key id":     inventory.SignTicketV2(priv, s.slug, inventory.TicketClaims{KeyID: 9, EventID: c.EventID, TicketID: c.TicketID, ZoneID: c.ZoneID}),
		"other chain":        on.floor[0].Token,
		"forged v1":          base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"tn":"`+s.slug+`","tid":"`+c.TicketID.String()+`"}`)) + ".AAAA",
		"random of the size": base64.RawURLEncoding.EncodeToString(make([]byte, 123)),
	}
	for name, tok := range cases {
		st, out := n.scan(t, "", map[string]any{"token": tok})
		if st != http.StatusBadRequest || out.Code != "ticket_invalid" || out.Result != inventory.ResultInvalid {
			t.Errorf("%s: %d %+v", name, st, out)
		}
	}
	for _, tbl := range []string{"inv_checkins", "inv_door_state"} {
		if c := n.count(t, `SELECT count(*) FROM `+tbl); c != 0 {
			t.Fatalf("%d rows in %s after bad tokens", c, tbl)
		}
	}
	// Bad requests are refused before anything is looked at.
	for body, code := range map[string]string{
		`{"token":"","gate":"N","device_id":"d","nonce":"n"}`:                                      "invalid_ticket_token",
		`{"token":"x","type":"sideways","gate":"N","device_id":"d","nonce":"n"}`:                   "invalid_type",
		`{"token":"x","gate":"","device_id":"d","nonce":"n"}`:                                      "invalid_gate",
		`{"token":"x","gate":"N","device_id":"d","nonce":""}`:                                      "invalid_nonce",
		`{"token":"x","gate":"N","device_id":"d","nonce":"n","scanned_at":"2001-01-01T00:00:00Z"}`: "invalid_scanned_at",
	} {
		res := n.do(t, "POST", "/api/v1/events/"+n.ev+"/checkins", body)
		if res.Status != http.StatusBadRequest || res.Code() != code {
			t.Errorf("%s: %d %s, want %s", body, res.Status, res.Body, code)
		}
	}
}

// Door staff, box office and ops leads scan at their own venue; at another
// venue they are refused and nothing is written; roles without the door
// permission are refused everywhere.
func TestDoorPermissions(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "doorperm")
	n := newDoorNight(t, s, 0, 8)
	res := s.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Other Hall", "timezone": "UTC", "capacity": 100})
	var other struct{ ID string }
	res.JSON(t, &other)
	type who struct {
		role, venue string
		scan, read  int
	}
	users := map[string]who{
		"door@x.test":     {policies.RoleDoorStaff, s.venue, 200, 200},
		"box@x.test":      {policies.RoleBoxOffice, s.venue, 200, 200},
		"ops@x.test":      {policies.RoleOpsLead, s.venue, 200, 200},
		"sec@x.test":      {policies.RoleSecurityLead, s.venue, 403, 200},
		"door2@x.test":    {policies.RoleDoorStaff, other.ID, 403, 403},
		"ops2@x.test":     {policies.RoleOpsLead, other.ID, 403, 403},
		"fin@x.test":      {policies.RoleFinance, "", 403, 403},
		"promoter@x.test": {policies.RolePromoter, "", 403, 200},
		"chainadm@x.test": {policies.RoleChainAdmin, "", 200, 200},
	}
	i := 0
	for email, w := range users {
		env.User(t, s.t, email, w.role, w.venue)
		tok := env.Login(t, s.slug, email)
		before := n.count(t, `SELECT count(*) FROM inv_checkins`)
		st, _ := n.scan(t, tok, map[string]any{"token": n.floor[i].Token})
		after := n.count(t, `SELECT count(*) FROM inv_checkins`)
		if st != w.scan || (st != 200) != (after == before) {
			t.Errorf("%s scanning: %d (want %d), records %d → %d", email, st, w.scan, before, after)
		}
		if st == 200 {
			i++
		}
		for _, path := range []string{"/attendance", "/revocations", "/door", "/checkins"} {
			if res := env.Do(t, "GET", s.slug, "/api/v1/events/"+n.ev+path, tok, nil); res.Status != w.read {
				t.Errorf("%s reading %s: %d, want %d", email, path, res.Status, w.read)
			}
		}
		configures := w.role == policies.RoleChainAdmin || w.role == policies.RolePromoter
		if res := env.Do(t, "PUT", s.slug, "/api/v1/events/"+n.ev+"/door", tok, map[string]any{"reentry": true}); (res.Status == 200) != configures {
			t.Errorf("%s changing the door rules: %d", email, res.Status)
		}
	}
	// Nobody signed in: nothing.
	if res := env.Do(t, "POST", s.slug, "/api/v1/events/"+n.ev+"/checkins", "", map[string]any{"token": n.floor[7].Token, "gate": "N", "device_id": "d", "nonce": "n"}); res.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous scan: %d", res.Status)
	}
	// Another chain's staff cannot reach this event at all.
	o := newShop(t, env, inv, "doorpermother")
	if res := env.Do(t, "POST", s.slug, "/api/v1/events/"+n.ev+"/checkins", o.tok, map[string]any{"token": n.floor[7].Token, "gate": "N", "device_id": "d", "nonce": "n"}); res.Status != http.StatusForbidden && res.Status != http.StatusUnauthorized {
		t.Fatalf("other chain's owner scanning: %d %s", res.Status, res.Body)
	}
}
