package inventory_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

// putDoor replaces the event's door rules.
func (n *doorNight) putDoor(t testing.TB, body map[string]any) inventory.DoorSettings {
	t.Helper()
	res := n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", body)
	mustStatus(t, res, http.StatusOK)
	var st inventory.DoorSettings
	res.JSON(t, &st)
	return st
}

// insideByLog counts, from the log alone, the tickets whose latest
// successful passage is an entry that arrived at or after out: who is inside
// once everyone was counted out at out.
func (n *doorNight) insideByLog(t testing.TB, out time.Time) int64 {
	t.Helper()
	return n.count(t, `SELECT count(*) FROM (SELECT DISTINCT ON (ticket_id) ticket_id, result, received_at FROM inv_checkins
		WHERE event_id = ? AND successful AND annulled_at IS NULL ORDER BY ticket_id, received_at DESC, id DESC) l
		WHERE l.result = 'admit' AND l.received_at >= ?`, n.ev, out)
}

// "Everyone out at": after the time, attendance counts nobody inside who
// came in before it; a later entry of such a ticket is a re-entry (refused
// without re-entry, admitted with it), a later exit finds them not inside;
// setting the same time twice changes nothing; clearing it brings them back.
func TestEveryoneOutAt(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "curfew")
	n := newDoorNight(t, s, 0, 6)
	for _, tk := range n.floor[:4] {
		n.mustScan(t, tk.Token, "entry", inventory.ResultAdmit)
	}
	n.mustScan(t, n.floor[1].Token, "exit", inventory.ResultExited)
	if z := zoneOf(t, n.attendance(t), "Floor"); z.Inside != 3 || z.Admitted != 4 {
		t.Fatalf("before the clear-out: %+v", z)
	}

	out := time.Now().UTC().Truncate(time.Millisecond)
	st := n.putDoor(t, map[string]any{"reentry": false, "everyone_out_at": out})
	if st.EveryoneOutAt == nil || !st.EveryoneOutAt.Equal(out) {
		t.Fatalf("settings %+v, want everyone_out_at %s", st, out)
	}
	for range 2 { // idempotent: the same time again changes nothing
		z := zoneOf(t, n.attendance(t), "Floor")
		if z.Inside != 0 || z.Admitted != 4 {
			t.Fatalf("after the clear-out: %+v", z)
		}
		n.putDoor(t, map[string]any{"reentry": false, "everyone_out_at": out})
	}
	if in := n.insideByLog(t, out); in != 0 {
		t.Fatalf("the log has %d inside after the clear-out", in)
	}
	// Without re-entry, the cleared holder cannot come back; an exit finds
	// nobody inside; a ticket never scanned still enters.
	dup := n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAlreadyAdmitted)
	if dup.Admission == nil {
		t.Fatalf("already_admitted without the admission: %+v", dup)
	}
	n.mustScan(t, n.floor[2].Token, "exit", inventory.ResultNotInside)
	n.mustScan(t, n.floor[4].Token, "entry", inventory.ResultAdmit)
	if z := zoneOf(t, n.attendance(t), "Floor"); z.Inside != 1 || z.Admitted != 5 {
		t.Fatalf("after a new entry: %+v", z)
	}
	// With re-entry, the cleared holder comes back in: one entry more, and
	// the implied exit folded into the state (entries - exits = inside).
	n.putDoor(t, map[string]any{"reentry": true, "everyone_out_at": out})
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAdmit)
	n.mustScan(t, n.floor[0].Token, "exit", inventory.ResultExited)
	n.mustScan(t, n.floor[0].Token, "entry", inventory.ResultAdmit)
	if e, x := n.count(t, `SELECT entries FROM inv_door_state WHERE ticket_id = ?`, n.floor[0].ID),
		n.count(t, `SELECT exits FROM inv_door_state WHERE ticket_id = ?`, n.floor[0].ID); e != 3 || x != 2 {
		t.Fatalf("state after the re-entries: entries %d exits %d", e, x)
	}
	z := zoneOf(t, n.attendance(t), "Floor")
	if z.Inside != 2 {
		t.Fatalf("after the re-entry: %+v", z)
	}
	if in := n.insideByLog(t, out); in != int64(z.Inside) {
		t.Fatalf("log says %d inside, attendance %d", in, z.Inside)
	}
	// Taking the time away counts everyone by their passages again.
	n.putDoor(t, map[string]any{"reentry": true})
	if z := zoneOf(t, n.attendance(t), "Floor"); z.Inside != 4 {
		t.Fatalf("without the clear-out: %+v", z)
	}
}

// Scans racing the clear-out: while the time is set, holders leave and
// others arrive. Whichever side of the time each scan falls on, fresh
// tickets are admitted once, an exit only finds nobody inside when it
// arrived after the time, and attendance equals the log's own count.
func TestEveryoneOutAtRace(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "curfewrace")
	n := newDoorNight(t, s, 0, 40)
	inside, fresh := n.floor[:20], n.floor[20:]
	for _, tk := range inside {
		n.mustScan(t, tk.Token, "entry", inventory.ResultAdmit)
	}
	type answer struct {
		ticket uuid.UUID
		typ    string
		out    scanOut
	}
	answers := make(chan answer, 40)
	var outAt time.Time
	var wg sync.WaitGroup
	start := make(chan struct{})
	scan := func(i int, tk inventory.Ticket, typ string) {
		defer wg.Done()
		<-start
		res, err := env.Try("POST", s.slug, "/api/v1/events/"+n.ev+"/checkins", s.tok, map[string]any{"token": tk.Token, "type": typ,
			"gate": "North", "device_id": fmt.Sprintf("dev-%d", i), "nonce": uuid.NewString()})
		if err != nil || res.Status != http.StatusOK {
			t.Errorf("scan %d: %v %d %s", i, err, res.Status, res.Body)
			return
		}
		var o scanOut
		res.JSON(t, &o)
		answers <- answer{tk.ID, typ, o}
	}
	for i := range 20 {
		wg.Add(2)
		go scan(i, inside[i], "exit")
		go scan(20+i, fresh[i], "entry")
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		outAt = time.Now().UTC()
		res, err := env.Try("PUT", s.slug, "/api/v1/events/"+n.ev+"/door", s.tok, map[string]any{"everyone_out_at": outAt})
		if err != nil || res.Status != http.StatusOK {
			t.Errorf("clear-out: %v %d %s", err, res.Status, res.Body)
		}
	}()
	close(start)
	wg.Wait()
	close(answers)
	if t.Failed() {
		t.FailNow()
	}
	for a := range answers {
		switch {
		case a.typ == "entry" && a.out.Result != inventory.ResultAdmit:
			t.Fatalf("fresh ticket %s: %+v", a.ticket, a.out)
		case a.typ == "exit" && a.out.Result == inventory.ResultNotInside && a.out.ReceivedAt.Before(outAt):
			t.Fatalf("exit before the clear-out found nobody inside: %+v (out at %s)", a.out, outAt)
		case a.typ == "exit" && a.out.Result != inventory.ResultNotInside && a.out.Result != inventory.ResultExited:
			t.Fatalf("exit %s: %+v", a.ticket, a.out)
		}
	}
	if c := n.count(t, `SELECT count(*) FROM (SELECT ticket_id FROM inv_checkins WHERE event_id = ? AND result = 'admit' GROUP BY ticket_id HAVING count(*) > 1) x`, n.ev); c != 0 {
		t.Fatalf("%d tickets admitted twice", c)
	}
	z := zoneOf(t, n.attendance(t), "Floor")
	if in := n.insideByLog(t, outAt); in != int64(z.Inside) {
		t.Fatalf("log says %d inside after the clear-out, attendance %+v", in, z)
	}
	if z.Admitted != 40 {
		t.Fatalf("admitted %d, want 40", z.Admitted)
	}
}

// A transfer racing scans of the old token: 20 devices scan a ticket while
// its holder transfers it. Either the old token was admitted first and the
// transfer is refused (a used ticket cannot change hands), or the transfer
// won and every scan of the old token is refused as revoked; never both
// admitted and transferred. Several rounds, to land scans inside the
// transfer's transaction.
func TestTransferRacingScans(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	n := newDoorNight(t, newShop(t, env, inv, "xferscan"), 0, 0)
	const rounds, scanners = 8, 20
	outcomes := map[string]int{}
	for r := range rounds {
		paid := n.paidOrder(t, map[string]any{"tier_id": tierID(t, n.inv, "Floor"), "quantity": 1})
		tk := paid.Tickets[0]
		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]string, scanners)
		var xferStatus int
		var xferCode string
		wg.Add(scanners + 1)
		go func() {
			defer wg.Done()
			<-start
			res, err := env.Try("POST", n.slug, "/api/v1/tickets/"+tk.ID.String()+"/transfer?"+sigOf(t, paid.OrderURL), "",
				map[string]any{"name": "Bob", "email": fmt.Sprintf("bob%d@example.com", r)})
			if err != nil {
				t.Error(err)
				return
			}
			xferStatus = res.Status
			if res.Status != http.StatusCreated {
				xferCode = codeOf(t, res)
			}
		}()
		for i := range scanners {
			go func() {
				defer wg.Done()
				<-start
				res, err := env.Try("POST", n.slug, "/api/v1/events/"+n.ev+"/checkins", n.tok, map[string]any{"token": tk.Token, "type": "entry",
					"gate": "North", "device_id": fmt.Sprintf("dev-%d", i), "nonce": uuid.NewString()})
				if err != nil || res.Status != http.StatusOK {
					t.Errorf("scan %d: %v %d %s", i, err, res.Status, res.Body)
					return
				}
				var o scanOut
				res.JSON(t, &o)
				results[i] = o.Result
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		admits := 0
		for _, res := range results {
			switch res {
			case inventory.ResultAdmit:
				admits++
			case inventory.ResultAlreadyAdmitted, inventory.ResultRevoked:
			default:
				t.Fatalf("round %d: scan answered %q", r, res)
			}
		}
		transferred := xferStatus == http.StatusCreated
		switch {
		case admits > 1:
			t.Fatalf("round %d: the old token admitted %d times", r, admits)
		case admits == 1 && transferred:
			t.Fatalf("round %d: the old token was admitted and the ticket transferred", r)
		case admits == 1 && (xferStatus != http.StatusConflict || xferCode != "ticket_checked_in"):
			t.Fatalf("round %d: admitted, transfer answered %d %s", r, xferStatus, xferCode)
		case admits == 0 && !transferred:
			t.Fatalf("round %d: nobody admitted and no transfer: %d %s", r, xferStatus, xferCode)
		}
		if transferred {
			for _, res := range results {
				if res != inventory.ResultRevoked {
					t.Fatalf("round %d: transferred, yet a scan of the old token answered %s", r, res)
				}
			}
			if c := n.count(t, `SELECT count(*) FROM inv_door_state WHERE ticket_id = ? AND entries > 0`, tk.ID); c != 0 {
				t.Fatalf("round %d: transferred ticket has a door entry", r)
			}
			outcomes["transferred"]++
		} else {
			outcomes["admitted"]++
		}
	}
	t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
}

// foldMatchesLog: every ticket's door state equals its log (successful
// entries and exits, inside = their difference).
func (n *doorNight) foldMatchesLog(t testing.TB) {
	t.Helper()
	if m := n.count(t, `SELECT count(*) FROM (SELECT ticket_id, count(*) FILTER (WHERE result = 'admit') AS e, count(*) FILTER (WHERE result = 'exited') AS x
			FROM inv_checkins WHERE event_id = ? AND successful AND annulled_at IS NULL GROUP BY ticket_id) l
			FULL JOIN (SELECT * FROM inv_door_state WHERE event_id = ?) s USING (ticket_id)
			WHERE l.e IS DISTINCT FROM s.entries OR l.x IS DISTINCT FROM s.exits OR s.inside IS DISTINCT FROM (l.e - l.x = 1)`, n.ev, n.ev); m != 0 {
		t.Fatalf("%d tickets whose fold disagrees with the log", m)
	}
}

// Offline exits and re-entries apply by when they happened (corrected
// time), not by when they arrived: a device's log of entry then exit that
// syncs after another device's later re-entry, and a batch listed out of
// order before a later online entry, leave the holders inside, with no
// conflict; an "everyone out at" time splits offline passages too.
func TestSyncAppliesByCorrectedTime(t *testing.T) {
	t.Parallel()
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "offorder")
	n := newDoorNight(t, s, 0, 2)
	n.putDoor(t, map[string]any{"reentry": true})
	a, d := n.floor[0], n.floor[1]
	now := time.Now()
	// Ticket a: device Y (re-entry at -20m) syncs before device X (entry
	// at -60m, exit at -30m); X's clock runs 5 minutes fast.
	st, out, code := n.sync(t, "", syncBody("Y", 0, []offScan{{token: a.Token, nonce: "y1", at: now.Add(-20 * time.Minute)}}))
	if st != 200 || out.Scans[0].Result != inventory.ResultAdmit {
		t.Fatalf("Y: %d %s %+v", st, code, out)
	}
	// Ticket d: a batch listing its exit before its entry, both before an
	// online entry made now.
	n.mustScan(t, d.Token, "entry", inventory.ResultAdmit)
	st, out, code = n.sync(t, "", syncBody("X", 5*time.Minute, []offScan{
		{token: a.Token, typ: "exit", result: "exited", nonce: "x2", at: now.Add(-30 * time.Minute)},
		{token: d.Token, typ: "exit", result: "exited", nonce: "x4", at: now.Add(-5 * time.Minute)},
		{token: a.Token, nonce: "x1", at: now.Add(-60 * time.Minute)},
		{token: d.Token, nonce: "x3", at: now.Add(-10 * time.Minute)},
	}))
	if st != 200 {
		t.Fatalf("X: %d %s", st, code)
	}
	want := []string{inventory.ResultExited, inventory.ResultExited, inventory.ResultAdmit, inventory.ResultAdmit}
	for i, sc := range out.Scans {
		if sc.Result != want[i] || sc.Conflict || sc.Superseded != nil {
			t.Fatalf("X scan %d: %+v, want %s without conflict", i, sc, want[i])
		}
	}
	if out.Conflicts != 0 || len(out.Unenforced) != 0 {
		t.Fatalf("X: %+v", out)
	}
	if z := zoneOf(t, n.attendance(t), "Floor"); z.Inside != 2 || z.Admitted != 2 {
		t.Fatalf("attendance %+v, want both inside", z)
	}
	if rep := n.conflicts(t); rep.Total != 0 {
		t.Fatalf("conflicts %+v", rep)
	}
	if e := n.count(t, `SELECT entries FROM inv_door_state WHERE ticket_id = ?`, a.ID); e != 2 {
		t.Fatalf("ticket a: %d entries, want 2", e)
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit' AND offline = false`, d.ID); c != 1 {
		t.Fatalf("the online re-entry of d is not an admission any more (%d)", c)
	}
	n.foldMatchesLog(t)
	// Replaying the same batch changes nothing.
	if st, again, _ := n.sync(t, "", syncBody("X", 5*time.Minute, []offScan{{token: a.Token, nonce: "x1", at: now.Add(-60 * time.Minute)}})); st != 200 || !again.Scans[0].Replayed {
		t.Fatalf("replay: %d %+v", st, again)
	}

	// Everyone out at -20m, re-entry off: an offline entry before it is
	// counted out; one after it is a re-entry the device could not refuse.
	c := newDoorNight(t, s, 0, 2)
	out20 := now.Add(-20 * time.Minute).UTC()
	c.putDoor(t, map[string]any{"everyone_out_at": out20})
	st, out, code = c.sync(t, "", syncBody("Z", 0, []offScan{
		{token: c.floor[0].Token, nonce: "z1", at: now.Add(-30 * time.Minute)},
		{token: c.floor[0].Token, nonce: "z2", at: now.Add(-10 * time.Minute)},
		{token: c.floor[1].Token, nonce: "z3", at: now.Add(-10 * time.Minute)},
	}))
	if st != 200 || out.Scans[0].Result != inventory.ResultAdmit || out.Scans[1].Result != inventory.ResultAlreadyAdmitted || !out.Scans[1].Conflict ||
		out.Scans[2].Result != inventory.ResultAdmit {
		t.Fatalf("Z: %d %s %+v", st, code, out)
	}
	if z := zoneOf(t, c.attendance(t), "Floor"); z.Inside != 1 || z.Admitted != 2 {
		t.Fatalf("after the clear-out, offline: %+v", z)
	}
	if x := c.count(t, `SELECT exits FROM inv_door_state WHERE ticket_id = ?`, c.floor[0].ID); x != 1 {
		t.Fatalf("the implied exit is not folded in: %d exits", x)
	}
}
