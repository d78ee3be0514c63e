package inventory_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory"
	"marquee/policies"
)

// offScan is one scan of a device's offline log.
type offScan struct {
	token, typ, result, nonce string
	at                        time.Time // the device's clock
}

// syncBody is a device's upload; skew is how far its clock runs ahead of
// the server's (its scanned_at and sent_at both carry it).
func syncBody(device string, skew time.Duration, scans []offScan) map[string]any {
	var out []map[string]any
	for _, s := range scans {
		typ := s.typ
		if typ == "" {
			typ = "entry"
		}
		res := s.result
		if res == "" {
			res = "admit"
		}
		out = append(out, map[string]any{"token": s.token, "type": typ, "gate": "Gate " + device, "nonce": s.nonce, "scanned_at": s.at.Add(skew), "result": res})
	}
	return map[string]any{"device_id": device, "sent_at": time.Now().Add(skew), "revocation_seq": 0, "scans": out}
}

// withOffset adds the device's round-trip measurement of its clock offset.
func withOffset(body map[string]any, ms int64) map[string]any {
	body["clock_offset_ms"] = ms
	return body
}

func (n *doorNight) sync(t testing.TB, tok string, body map[string]any) (int, inventory.SyncResult, string) {
	t.Helper()
	if tok == "" {
		tok = n.tok
	}
	res := n.env.Do(t, "POST", n.slug, "/api/v1/events/"+n.ev+"/checkins/sync", tok, body)
	var out inventory.SyncResult
	if res.Status == http.StatusOK {
		res.JSON(t, &out)
	}
	return res.Status, out, res.Code()
}

func (n *doorNight) conflicts(t testing.TB) inventory.ConflictReport {
	t.Helper()
	res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/checkin-conflicts?limit=1000", nil)
	mustStatus(t, res, http.StatusOK)
	var r inventory.ConflictReport
	res.JSON(t, &r)
	return r
}

// checkOneAdmissionEach: every ticket of ids has exactly one standing
// admission in the log, the fold agrees with the log, and attendance with both.
func (n *doorNight) checkOneAdmissionEach(t testing.TB, ids []uuid.UUID) {
	t.Helper()
	for _, id := range ids {
		if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND annulled_at IS NULL`, id); c != 1 {
			t.Fatalf("ticket %s has %d admissions", id, c)
		}
	}
	if m := n.count(t, `SELECT count(*) FROM (SELECT ticket_id, count(*) FILTER (WHERE result = 'admit') AS e, count(*) FILTER (WHERE result = 'exited') AS x
			FROM inv_checkins WHERE event_id = ? AND successful AND annulled_at IS NULL GROUP BY ticket_id) l
			FULL JOIN (SELECT * FROM inv_door_state WHERE event_id = ?) s USING (ticket_id)
			WHERE l.e IS DISTINCT FROM s.entries OR l.x IS DISTINCT FROM s.exits OR s.inside IS DISTINCT FROM (l.e - l.x = 1)`, n.ev, n.ev); m != 0 {
		t.Fatalf("%d tickets whose fold disagrees with the log", m)
	}
	at := n.attendance(t)
	if adm, in := n.logFold(t); adm != int64(at.Admitted) || in != int64(at.Inside) {
		t.Fatalf("log says admitted %d inside %d, attendance %+v", adm, in, at)
	}
}

// Several offline devices admitted the same tickets (and some had been
// admitted online, later): their logs synced at once keep the earliest scan
// of each ticket as its admission, whatever order they arrive in and
// whatever each device's clock said; every other admission is a conflict in
// the report; each ticket is admitted once and counted inside once.
func TestSyncEarliestAdmissionWins(t *testing.T) {
	// Serial: the offsets it checks include the request's transit time (a latency bound).
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offline")
	n := newDoorNight(t, s, 0, 24)
	const devices = 5
	base := time.Now().Add(-30 * time.Minute)
	// Tickets 0–5 were admitted online just now (after every offline scan).
	var ids []uuid.UUID
	for i, tk := range n.floor {
		ids = append(ids, tk.ID)
		if i < 6 {
			n.mustScan(t, tk.Token, "entry", inventory.ResultAdmit, "device_id", "online-1")
		}
	}
	// Device d scans ticket i at base + ((i*7+d*3)%11) minutes; clocks run
	// d minutes ahead (corrected by the offset each sync measures).
	type want struct {
		device string
		at     time.Time
	}
	earliest := map[uuid.UUID]want{}
	logs := make([][]offScan, devices)
	planted := 0
	for d := range devices {
		dev := fmt.Sprintf("dev-%d", d)
		for i, tk := range n.floor {
			at := base.Add(time.Duration((i*7+d*3)%11)*time.Minute + time.Duration(d)*time.Second)
			logs[d] = append(logs[d], offScan{token: tk.Token, nonce: uuid.NewString(), at: at})
			if w, ok := earliest[tk.ID]; !ok || at.Before(w.at) {
				earliest[tk.ID] = want{dev, at}
			}
			planted++
		}
	}
	planted += 6 - len(n.floor) // admissions beyond the first per ticket: online ones count, the first of each ticket does not
	var wg sync.WaitGroup
	results := make([]inventory.SyncResult, devices)
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, out, code := n.sync(t, "", syncBody(fmt.Sprintf("dev-%d", d), time.Duration(d)*time.Minute, logs[d]))
			if st != http.StatusOK {
				t.Errorf("device %d sync: %d %s", d, st, code)
			}
			results[d] = out
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	n.checkOneAdmissionEach(t, ids)
	for id, w := range earliest {
		var dev string
		var happened time.Time
		row := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND device_id = ? AND abs(extract(epoch FROM happened_at - ?::timestamptz)) < 2`, id, w.device, w.at)
		if row != 1 {
			n.sql(t, func(tx *gorm.DB) error {
				return tx.Raw(`SELECT device_id, coalesce(happened_at, received_at) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit'`, id).Row().Scan(&dev, &happened)
			})
			t.Fatalf("ticket %s: admission by %s at %s, want %s at %s", id, dev, happened, w.device, w.at)
		}
	}
	// Every offset measured: device d's clock ran d minutes ahead.
	for d, r := range results {
		if off := time.Duration(r.ClockOffsetMS) * time.Millisecond; (off + time.Duration(d)*time.Minute).Abs() > 5*time.Second {
			t.Fatalf("device %d: offset %s", d, off)
		}
	}
	rep := n.conflicts(t)
	if rep.Total != planted || rep.Tickets != len(n.floor) || len(rep.Conflicts) != planted {
		t.Fatalf("conflicts: %d over %d tickets, planted %d over %d", rep.Total, rep.Tickets, planted, len(n.floor))
	}
	for _, c := range rep.Conflicts {
		if c.ApartMS < 0 || c.Admission.CheckinID == c.Other.CheckinID || c.Admission.DeviceID != earliest[c.TicketID].device || c.Zone != "Floor" {
			t.Fatalf("conflict %+v", c)
		}
	}
	// The online admissions became conflicts: they happened later.
	if c := n.count(t, `SELECT count(*) FROM inv_door_conflicts x JOIN inv_checkins c ON c.id = x.checkin_id WHERE c.device_id = 'online-1' AND NOT c.successful`); c != 6 {
		t.Fatalf("%d online admissions superseded, want 6", c)
	}
	if at := n.attendance(t); at.Inside != len(n.floor) || at.Admitted != len(n.floor) {
		t.Fatalf("attendance %+v", at)
	}
	// The answer named the rule no device could enforce offline.
	found := false
	for _, r := range results {
		for _, u := range r.Unenforced {
			found = found || (u.Rule == inventory.RuleAdmittedElsewhere && len(u.Scans) > 0)
		}
	}
	if !found {
		t.Fatalf("no batch reported admitted_elsewhere: %+v", results[0].Unenforced)
	}
}

// The same batch twice (one after the other, and twice at once): one record
// per nonce; the second answer is the first's, replayed. A device's exit and
// re-entry, and a scan it refused, are recorded as such.
func TestSyncIdempotentByNonce(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offnonce")
	n := newDoorNight(t, s, 0, 4)
	at := time.Now().Add(-10 * time.Minute)
	log := []offScan{
		{token: n.floor[0].Token, nonce: "a1", at: at},
		{token: n.floor[0].Token, nonce: "a2", at: at.Add(time.Minute), result: "already_admitted"},
		{token: n.floor[1].Token, nonce: "b1", at: at},
		{token: n.floor[1].Token, nonce: "b2", at: at.Add(2 * time.Minute), typ: "exit", result: "exited"},
		{token: n.floor[2].Token, nonce: "c1", at: at},
	}
	st, first, code := n.sync(t, "", syncBody("dev-x", 0, log))
	if st != 200 || first.Admitted != 3 || first.Replayed != 0 || first.Scans[1].Result != inventory.ResultAlreadyAdmitted || first.Scans[1].Conflict ||
		first.Scans[3].Result != inventory.ResultExited {
		t.Fatalf("first sync: %d %s %+v", st, code, first)
	}
	records := n.count(t, `SELECT count(*) FROM inv_checkins WHERE event_id = ?`, n.ev)
	st, again, _ := n.sync(t, "", syncBody("dev-x", 0, log))
	if st != 200 || again.Replayed != len(log) || again.Admitted != 0 || again.Scans[0].CheckinID != first.Scans[0].CheckinID {
		t.Fatalf("replayed sync: %d %+v", st, again)
	}
	// Twice at once, a new log.
	log2 := []offScan{{token: n.floor[3].Token, nonce: "d1", at: at}, {token: n.floor[2].Token, nonce: "c2", at: at.Add(time.Minute), typ: "exit", result: "exited"}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _, code := n.sync(t, "", syncBody("dev-x", 0, log2)); st != 200 {
				t.Errorf("concurrent twin: %d %s", st, code)
			}
		}()
	}
	wg.Wait()
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE event_id = ?`, n.ev); c != records+2 {
		t.Fatalf("%d records after the twins, want %d", c, records+2)
	}
	if at := n.attendance(t); at.Inside != 2 || at.Admitted != 4 {
		t.Fatalf("attendance %+v", at)
	}
	n.checkOneAdmissionEach(t, []uuid.UUID{n.floor[0].ID, n.floor[1].ID, n.floor[2].ID, n.floor[3].ID})
	if rep := n.conflicts(t); rep.Total != 0 {
		t.Fatalf("conflicts without any: %+v", rep)
	}
}

// Re-entry and revocation offline: a device that let a holder in again
// after an exit (re-entry off) made a conflict; one that admitted a ticket
// revoked after its manifest is told so; neither is counted inside.
func TestSyncUnenforcedRules(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offrules")
	n := newDoorNight(t, s, 0, 3)
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAdmit)
	n.mustScan(t, n.floor[0].Token, "exit", inventory.ResultExited)
	if _, err := inv.Service().ReissueTicket(t.Context(), s.t, n.floor[1].ID, inventory.TicketHolder{}); err != nil {
		t.Fatal(err)
	}
	// The offline scans happened after the online exit (scans are applied
	// by when they happened: one before the online entry would have been
	// the admission, and the online entry the conflict).
	at := time.Now()
	st, out, code := n.sync(t, "", syncBody("dev-r", 0, []offScan{{token: n.floor[0].Token, nonce: "r1", at: at}, {token: n.floor[1].Token, nonce: "r2", at: at}}))
	if st != 200 || out.Scans[0].Result != inventory.ResultAlreadyAdmitted || !out.Scans[0].Conflict || out.Scans[1].Result != inventory.ResultRevoked {
		t.Fatalf("sync: %d %s %+v", st, code, out)
	}
	rules := map[string][]int{}
	for _, u := range out.Unenforced {
		rules[u.Rule] = u.Scans
	}
	if len(rules[inventory.RuleReentryOffline]) != 1 || len(rules[inventory.RuleRevokedAfterManifest]) != 1 {
		t.Fatalf("unenforced %+v", out.Unenforced)
	}
	if at := n.attendance(t); at.Inside != 0 {
		t.Fatalf("attendance %+v", at)
	}
	if rep := n.conflicts(t); rep.Total != 1 || rep.Conflicts[0].Reason != "reentry" {
		t.Fatalf("report %+v", rep)
	}
}

// Bad uploads are refused whole with a problem, nothing written: a forged,
// a truncated and another chain's token, an unknown event, door staff of
// another venue, a batch over the limit, malformed scans.
func TestSyncBadInput(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offbad")
	n := newDoorNight(t, s, 0, 2)
	o := newDoorNight(t, newShop(t, env, inv, "offbadother"), 0, 1)
	at := time.Now().Add(-time.Minute)
	good := offScan{token: n.floor[0].Token, nonce: "g", at: at}
	tok := n.floor[1].Token
	forged := tok[:len(tok)-3] + map[bool]string{true: "AAA", false: "BBB"}[!strings.HasSuffix(tok, "AAA")]
	res := s.do(t, "POST", "/api/v1/venues", map[string]any{"name": "Far Hall", "timezone": "UTC", "capacity": 100})
	var far struct{ ID string }
	res.JSON(t, &far)
	env.User(t, s.t, "door-far@x.test", policies.RoleDoorStaff, far.ID)
	farTok := env.Login(t, s.slug, "door-far@x.test")
	env.User(t, s.t, "door-here@x.test", policies.RoleDoorStaff, s.venue)
	hereTok := env.Login(t, s.slug, "door-here@x.test")
	huge := make([]offScan, inventory.MaxSyncScans+1)
	for i := range huge {
		huge[i] = offScan{token: tok, nonce: fmt.Sprint(i), at: at}
	}
	cases := []struct {
		name, tok, path string
		body            map[string]any
		status          int
		code            string
	}{
		{"forged", "", "", syncBody("d", 0, []offScan{good, {token: forged, nonce: "f", at: at}}), 400, "ticket_invalid"},
		{"truncated", "", "", syncBody("d", 0, []offScan{good, {token: tok[:40], nonce: "t", at: at}}), 400, "ticket_invalid"},
		{"other chain", "", "", syncBody("d", 0, []offScan{good, {token: o.floor[0].Token, nonce: "o", at: at}}), 400, "ticket_invalid"},
		{"unknown event", "", "/api/v1/events/" + uuid.NewString() + "/checkins/sync", syncBody("d", 0, []offScan{good}), 404, ""},
		{"door staff elsewhere", farTok, "", syncBody("d", 0, []offScan{good}), 403, "forbidden"},
		{"too many", "", "", syncBody("d", 0, huge), 413, "sync_too_many_scans"},
		{"empty", "", "", syncBody("d", 0, nil), 400, "invalid_scans"},
		{"bad result", "", "", syncBody("d", 0, []offScan{good, {token: tok, nonce: "x", at: at, result: "exited"}}), 400, "invalid_device_result"},
		{"clock offset beyond a week", "", "", withOffset(syncBody("d", 0, []offScan{good}), 8*24*3600*1000), 400, "invalid_clock_offset"},
		{"last month", "", "", syncBody("d", 0, []offScan{{token: tok, nonce: "m", at: at.Add(-30 * 24 * time.Hour)}}), 400, "invalid_scanned_at"},
	}
	for _, c := range cases {
		before := n.count(t, `SELECT count(*) FROM inv_checkins`) + n.count(t, `SELECT count(*) FROM inv_door_state`)
		path := c.path
		if path == "" {
			path = "/api/v1/events/" + n.ev + "/checkins/sync"
		}
		tk := c.tok
		if tk == "" {
			tk = n.tok
		}
		res := env.Do(t, "POST", s.slug, path, tk, c.body)
		if res.Status != c.status || (c.code != "" && res.Code() != c.code) || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("%s: %d %s, want %d %s", c.name, res.Status, res.Body, c.status, c.code)
		}
		if after := n.count(t, `SELECT count(*) FROM inv_checkins`) + n.count(t, `SELECT count(*) FROM inv_door_state`); after != before {
			t.Errorf("%s wrote: %d → %d rows", c.name, before, after)
		}
	}
	// Door staff at the event's own venue may sync.
	if st, _, code := n.sync(t, hereTok, syncBody("d", 0, []offScan{good})); st != 200 {
		t.Fatalf("door staff here: %d %s", st, code)
	}
}

// The manifest lists every ticket with its zone and state, binary; its
// delta since the cursor it handed out holds the tickets that changed.
func TestDoorManifest(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "manifest")
	n := newDoorNight(t, s, 2, 5)
	get := func(since string) (inventory.ManifestHeader, []inventory.ManifestRecord) {
		t.Helper()
		res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/door-manifest?since="+since, nil)
		mustStatus(t, res, http.StatusOK)
		h, recs, err := inventory.ParseManifest([]byte(res.Body))
		if err != nil {
			t.Fatalf("parse: %v (%d bytes)", err, len(res.Body))
		}
		return h, recs
	}
	h, recs := get("")
	if !h.Full || h.Count != 7 || len(recs) != 7 || len(h.Zones) != 2 || h.Cursor == "" || h.RecordSize != 18 {
		t.Fatalf("full manifest %+v", h)
	}
	for _, r := range recs {
		if r.State != inventory.ManifestStateValid || r.Zone < 0 {
			t.Fatalf("record %+v", r)
		}
	}
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAdmit)
	if _, err := inv.Service().ReissueTicket(t.Context(), s.t, n.stalls[0].ID, inventory.TicketHolder{}); err != nil {
		t.Fatal(err)
	}
	d, recs := get(h.Cursor)
	states := map[uuid.UUID]int{}
	for _, r := range recs {
		states[r.TicketID] = r.State
	}
	if d.Full || states[n.floor[0].ID] != inventory.ManifestStateInside || states[n.stalls[0].ID] != inventory.ManifestStateRevoked || len(recs) != 3 || d.RevocationSeq != 1 {
		t.Fatalf("delta %+v: %v", d, states)
	}
	if res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/door-manifest?since=x", nil); res.Status != 400 || res.Code() != "invalid_since" {
		t.Fatalf("bad since: %d %s", res.Status, res.Body)
	}
}

// A slow upload does not reorder a device's scan after an online one made
// a moment later: sent_at's estimate of the clock offset counts the
// upload's transit, the device's round-trip measurement does not, and it is
// taken when consistent with sent_at (never above it, by at most
// MaxUploadTransit). Without it the device's scan would lose.
func TestSyncMeasuredClockOffset(t *testing.T) {
	// Serial: sent_at's estimate includes the request's transit time (a latency bound).
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offclock")
	n := newDoorNight(t, s, 0, 3)
	var clock inventory.DoorClock
	res := n.do(t, "GET", "/api/v1/events/"+n.ev+"/door-clock", nil)
	mustStatus(t, res, http.StatusOK)
	res.JSON(t, &clock)
	if d := time.Since(clock.ServerTime); d < -time.Minute || d > time.Minute {
		t.Fatalf("door clock %s", clock.ServerTime)
	}
	slowUpload := func(body map[string]any) map[string]any {
		body["sent_at"] = time.Now().Add(-3 * time.Second) // 3 s in transit
		return body
	}
	for _, c := range []struct {
		name       string
		offsetMS   *int64
		deviceWins bool
	}{
		{"sent_at alone", nil, false},
		{"measured", ptr(int64(0)), true},
		{"measured above sent_at's bound", ptr(int64(10_000)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tk := n.floor[map[string]int{"sent_at alone": 0, "measured": 1, "measured above sent_at's bound": 2}[c.name]]
			scannedAt := time.Now().Add(-time.Second) // a second before the online scan
			n.mustScan(t, tk.Token, "entry", inventory.ResultAdmit, "device_id", "turnstile-1")
			body := slowUpload(syncBody("clocked", 0, []offScan{{token: tk.Token, nonce: uuid.NewString(), at: scannedAt}}))
			if c.offsetMS != nil {
				body = withOffset(body, *c.offsetMS)
			}
			st, out, code := n.sync(t, "", body)
			if st != http.StatusOK {
				t.Fatalf("%d %s", st, code)
			}
			if c.offsetMS != nil && *c.offsetMS == 0 && out.ClockOffsetMS != 0 {
				t.Fatalf("offset %d ms, want the measured 0", out.ClockOffsetMS)
			}
			if c.offsetMS == nil || *c.offsetMS > 3000 {
				if out.ClockOffsetMS < 3000 {
					t.Fatalf("offset %d ms, want sent_at's estimate (3 s and more)", out.ClockOffsetMS)
				}
			}
			won := out.Scans[0].Result == inventory.ResultAdmit && !out.Scans[0].Conflict
			if won != c.deviceWins {
				t.Fatalf("device scan %+v (offset %d ms), device wins: %v, want %v", out.Scans[0], out.ClockOffsetMS, won, c.deviceWins)
			}
			if adm := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND annulled_at IS NULL`, tk.ID); adm != 1 {
				t.Fatalf("%d standing admissions", adm)
			}
			if mine := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND device_id = 'clocked'`, tk.ID); (mine == 1) != c.deviceWins {
				t.Fatalf("device admissions %d, device wins %v", mine, c.deviceWins)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Offline syncs racing transfers of the same tickets: six devices upload
// logs admitting every ticket (in batches, each device in its own order)
// while the holders transfer them. A batch reads its tickets FOR SHARE, as
// an online scan does, against the transfer's FOR UPDATE, so the database
// serialises each ticket's batch and transfer one way or the other, and
// both sides agree on that order: either a batch admitted the ticket first
// and the transfer is refused (a used ticket cannot change hands), or the
// transfer committed first and every batch judges the old token revoked.
// Never a ticket transferred and admitted under its old token, and no
// deadlock (the door retries one whole, and says so in the log).
func TestSyncRacesTransfer(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	env, inv := startEnvLogging(t, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	s := newShop(t, env, inv, "syncxfer")
	n := &doorNight{shop: s, ev: s.event(t, "Sync Transfer Night")}
	n.inv = s.configure(t, n.ev, simpleSetup(1, 1, 60, nil))
	type held struct {
		tk  inventory.Ticket
		sig string
	}
	var tickets []held
	for range 8 {
		paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 6})
		for _, tk := range paid.Tickets {
			tickets = append(tickets, held{tk, sigOf(t, paid.OrderURL)})
		}
	}
	const devices, batches, transferrers = 6, 4, 8
	base := time.Now().Add(-10 * time.Minute)

	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	decisions := map[uuid.UUID][]string{} // ticket → what each batch decided
	for d := range devices {
		// Device d scans every ticket, starting at a different place.
		var log []offScan
		for i := range tickets {
			tk := tickets[(i+d*len(tickets)/devices)%len(tickets)].tk
			log = append(log, offScan{token: tk.Token, nonce: uuid.NewString(), at: base.Add(time.Duration(i*devices+d) * time.Second)})
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			per := (len(log) + batches - 1) / batches
			for b := 0; b < len(log); b += per {
				st, out, code := n.sync(t, "", syncBody(fmt.Sprintf("dev-%d", d), 0, log[b:min(b+per, len(log))]))
				if st != http.StatusOK {
					t.Errorf("device %d batch %d: %d %s", d, b/per, st, code)
					return
				}
				mu.Lock()
				for _, dec := range out.Scans {
					decisions[dec.TicketID] = append(decisions[dec.TicketID], dec.Result)
				}
				mu.Unlock()
			}
		}()
	}
	type outcome struct {
		status int
		code   string
	}
	transfers := make([]outcome, len(tickets))
	queue := make(chan int, len(tickets))
	for i := range tickets {
		queue <- (i * 7) % len(tickets) // 7 is prime to 48: every ticket once
	}
	close(queue)
	for range transferrers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range queue {
				st, _, code := n.transfer(t, tickets[i].tk.ID, tickets[i].sig, "Bob", fmt.Sprintf("bob%d@example.com", i))
				transfers[i] = outcome{st, code}
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var kept []uuid.UUID
	moved := 0
	for i, h := range tickets {
		admissions := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND annulled_at IS NULL`, h.tk.ID)
		got := decisions[h.tk.ID]
		if len(got) != devices {
			t.Fatalf("ticket %d: %d decisions, want one per device", i, len(got))
		}
		switch tr := transfers[i]; {
		case tr.status == http.StatusCreated:
			moved++
			if admissions != 0 {
				t.Fatalf("ticket %d was transferred and admitted under its old token (%d admissions)", i, admissions)
			}
			for _, r := range got {
				if r != inventory.ResultRevoked {
					t.Fatalf("ticket %d: transferred, yet a batch decided %s for its old token", i, r)
				}
			}
		case tr.status == http.StatusConflict && tr.code == "ticket_checked_in":
			kept = append(kept, h.tk.ID)
			if admissions != 1 {
				t.Fatalf("ticket %d: transfer refused as checked in, but %d admissions", i, admissions)
			}
			admits := 0
			for _, r := range got {
				switch r {
				case inventory.ResultAdmit:
					admits++
				case inventory.ResultAlreadyAdmitted:
				default:
					t.Fatalf("ticket %d: admitted, yet a batch decided %s", i, r)
				}
			}
			// The admission may have moved to an earlier scan of a later
			// batch (earliest wins); one batch's decision was admit at least.
			if admits == 0 {
				t.Fatalf("ticket %d: admitted, but no batch decided admit: %v", i, got)
			}
		default:
			t.Fatalf("ticket %d: transfer answered %d %s", i, tr.status, tr.code)
		}
	}
	n.checkOneAdmissionEach(t, kept)
	if c := logs.count("40P01"); c != 0 {
		t.Fatalf("%d deadlocks between batches and transfers", c)
	}
	t.Logf("%d tickets: %d transferred first, %d admitted first", len(tickets), moved, len(kept))
}
