package staffing_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/staffing"
)

// Twenty colleagues accept the same swap at the same instant through the
// API: exactly one takes it, the others hear swap_taken. The manager's
// approval then moves the place in one transaction: the giver is off, the
// winner on, the shift's count unchanged, both told by mail.
func TestSwapAcceptedByOneOfManyColleagues(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "swaprace")
	bar := c.shift(t, "bar", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), 3)
	c.publish(t, c.eventAt)
	giver := c.staff(t, "gia", true, []string{"bar"}, nil)
	asg := decode[staffing.Assignment](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+bar+"/signup", giver.tok, nil)))
	sw := decode[staffing.Swap](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+asg.ID.String()+"/swap", giver.tok, nil)))
	if sw.Status != staffing.SwapAsked || sw.ToStaff != nil {
		t.Fatalf("asked: %+v", sw)
	}
	// Someone outside the role does not see it and cannot take it.
	crew := c.staff(t, "cal", true, []string{"crew"}, nil)
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", crew.tok, nil); res.Status != http.StatusNotFound {
		t.Fatalf("accepted outside the role: %d %s", res.Status, res.Body)
	}
	// Nor can it be approved before someone accepts.
	if res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/swaps/"+sw.ID.String()+"/approve", nil); res.Status != http.StatusConflict || res.Code() != "swap_not_open" {
		t.Fatalf("approving an asked swap: %d %s", res.Status, res.Body)
	}

	colleagues := make([]person, 20)
	for i := range colleagues {
		colleagues[i] = c.staff(t, "col", true, []string{"bar"}, nil)
	}
	if mine := decode[app.List[staffing.Swap]](t, e.Do(t, "GET", c.slug, "/api/v1/staffing/me/swaps", colleagues[0].tok, nil).Body).Items; len(mine) != 1 {
		t.Fatalf("a colleague's swaps: %+v", mine)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, len(colleagues))
	codes := make([]string, len(colleagues))
	for i, p := range colleagues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := e.Try("POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", p.tok, nil)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i], codes[i] = res.Status, res.Code()
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range colleagues {
		switch {
		case statuses[i] == http.StatusOK:
			if winner >= 0 {
				t.Fatalf("two colleagues took the swap: %d and %d", winner, i)
			}
			winner = i
		case statuses[i] != http.StatusConflict || codes[i] != "swap_taken":
			t.Fatalf("colleague %d: %d %s", i, statuses[i], codes[i])
		}
	}
	if winner < 0 {
		t.Fatal("nobody took the swap")
	}
	w := colleagues[winner]
	if n := c.count(t, `SELECT count(*) FROM stf_swaps WHERE id = ? AND status = 'accepted' AND taker = ?`, sw.ID, w.id); n != 1 {
		t.Fatalf("the swap's taker in the database is not the winner")
	}

	done := decode[staffing.Swap](t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/swaps/"+sw.ID.String()+"/approve", nil).Body)
	if done.Status != staffing.SwapApproved || done.NewAssignmentID == nil {
		t.Fatalf("approved: %+v", done)
	}
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE shift_id = ? AND staff_id = ? AND status = 'cancelled'`, bar, giver.id); n != 1 {
		t.Fatal("the giver is still on the shift")
	}
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE id = ? AND staff_id = ? AND status = 'assigned'`, *done.NewAssignmentID, w.id); n != 1 {
		t.Fatal("the taker is not on the shift")
	}
	if n := c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, bar); n != 1 {
		t.Fatalf("filled %d after the swap, want 1", n)
	}
	if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE (to_email = ? AND kind = 'staffing.removed') OR (to_email = ? AND kind = 'staffing.assigned')`, giver.email, w.email); n != 2 {
		t.Fatalf("%d swap mails, want 2", n)
	}
	// Approving twice changes nothing.
	if res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/swaps/"+sw.ID.String()+"/approve", nil); res.Status != http.StatusConflict || res.Code() != "swap_not_open" {
		t.Fatalf("second approval: %d %s", res.Status, res.Body)
	}
}

// The approval keeps every guarantee of an assignment: a taker who got an
// overlapping shift meanwhile is refused by the exclusion constraint and the
// giver keeps the place; a certification that runs out before the shift
// ends refuses the colleague. Bad input is refused and writes nothing.
func TestSwapKeepsAssignmentGuarantees(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "swaprules")
	medic := c.shift(t, "medic", c.eventAt, c.eventAt.Add(3*time.Hour), 2)
	other := c.shift(t, "bar", c.eventAt.Add(time.Hour), c.eventAt.Add(2*time.Hour), 2)
	c.publish(t, c.eventAt)
	certs := map[string]string{"senior_first_aid": ""}
	giver := c.staff(t, "gus", true, []string{"medic"}, certs)
	asg := decode[staffing.Assignment](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+medic+"/signup", giver.tok, nil)))
	swapPath := "/api/v1/staffing/me/assignments/" + asg.ID.String() + "/swap"

	// Bad input.
	noCert := c.staff(t, "nia", true, []string{"medic"}, nil)
	lapsing := c.staff(t, "lev", true, []string{"medic"}, map[string]string{"first_aid": c.eventAt.In(newYork).Format(time.DateOnly)})
	bartender := c.staff(t, "bo", true, []string{"bar"}, nil)
	busy := c.staff(t, "ola", true, []string{"medic"}, certs)
	late := c.shift(t, "medic", c.eventAt.Add(2*time.Hour), c.eventAt.Add(5*time.Hour), 1)
	mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+late+"/assignments", map[string]any{"staff_id": busy.id}))
	for _, bad := range []struct {
		tok    string
		body   any
		status int
		code   string
	}{
		{giver.tok, map[string]any{"colleague_id": "nope"}, http.StatusBadRequest, "invalid_request"},
		{giver.tok, map[string]any{"colleague_id": uuid.NewString()}, http.StatusBadRequest, "unknown_staff"},
		{giver.tok, map[string]any{"colleague_id": giver.id}, http.StatusBadRequest, "unknown_staff"},
		{giver.tok, map[string]any{"colleague_id": bartender.id}, http.StatusConflict, "not_qualified"},
		// A colleague asked by name must be able to take it now.
		{giver.tok, map[string]any{"colleague_id": noCert.id}, http.StatusConflict, "certification_required"},
		{giver.tok, map[string]any{"colleague_id": lapsing.id}, http.StatusConflict, "certification_required"},
		{giver.tok, map[string]any{"colleague_id": busy.id}, http.StatusConflict, "shift_overlap"},
		{giver.tok, map[string]any{"colleague": noCert.id}, http.StatusBadRequest, "invalid_json"},
		{noCert.tok, nil, http.StatusNotFound, "not_found"},
	} {
		res := e.Do(t, "POST", c.slug, swapPath, bad.tok, bad.body)
		if res.Status != bad.status || res.Code() != bad.code {
			t.Fatalf("swap %v: %d %s", bad.body, res.Status, res.Body)
		}
	}
	if n := c.count(t, `SELECT count(*) FROM stf_swaps`); n != 0 {
		t.Fatalf("bad input wrote %d swaps", n)
	}

	// Asked of a qualified colleague by name: nobody else may take it; the
	// giver withdraws it before they do, once.
	named := c.staff(t, "ula", true, []string{"medic"}, map[string]string{"first_aid": ""})
	sw := decode[staffing.Swap](t, mustCreated(t, e.Do(t, "POST", c.slug, swapPath, giver.tok, map[string]any{"colleague_id": named.id})))
	if res := e.Do(t, "POST", c.slug, swapPath, giver.tok, nil); res.Status != http.StatusConflict || res.Code() != "swap_pending" {
		t.Fatalf("a second swap: %d %s", res.Status, res.Body)
	}
	for _, p := range []person{noCert, lapsing} {
		if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", p.tok, nil); res.Status != http.StatusNotFound {
			t.Fatalf("accepting a swap asked of someone else: %d %s", res.Status, res.Body)
		}
	}
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/withdraw", giver.tok, nil), http.StatusOK)
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", named.tok, nil); res.Status != http.StatusConflict || res.Code() != "swap_not_open" {
		t.Fatalf("accepting a withdrawn swap: %d %s", res.Status, res.Body)
	}

	// Open to any medic: the one whose certification lapses at midnight of
	// the show's day (before the shift ends) is refused.
	sw = decode[staffing.Swap](t, mustCreated(t, e.Do(t, "POST", c.slug, swapPath, giver.tok, nil)))
	if res := e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", lapsing.tok, nil); res.Status != http.StatusConflict || res.Code() != "certification_required" {
		t.Fatalf("accepting with a lapsing certification: %d %s", res.Status, res.Body)
	}
	// A qualified colleague accepts, then is put on an overlapping shift.
	taker := c.staff(t, "tia", true, []string{"medic", "bar"}, map[string]string{"first_aid": ""})
	mustStatus(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/swaps/"+sw.ID.String()+"/accept", taker.tok, nil), http.StatusOK)
	mustCreated(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/shifts/"+other+"/assignments", map[string]any{"staff_id": taker.id}))
	res := c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/swaps/"+sw.ID.String()+"/approve", nil)
	if res.Status != http.StatusConflict || res.Code() != "shift_overlap" {
		t.Fatalf("approving into an overlap: %d %s", res.Status, res.Body)
	}
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE id = ? AND status = 'assigned'`, asg.ID); n != 1 {
		t.Fatal("the refused swap took the giver off")
	}
	if n := c.count(t, `SELECT filled FROM stf_shifts WHERE id = ?`, medic); n != 1 {
		t.Fatalf("filled %d after a refused swap", n)
	}
	if n := c.count(t, `SELECT count(*) FROM stf_swaps WHERE id = ? AND status = 'accepted'`, sw.ID); n != 1 {
		t.Fatal("the refused approval moved the swap")
	}
	// The manager refuses it; the giver may ask again.
	mustStatus(t, c.do(t, "POST", "/api/v1/venues/"+c.venue+"/staffing/swaps/"+sw.ID.String()+"/refuse", nil), http.StatusOK)
	mustCreated(t, e.Do(t, "POST", c.slug, swapPath, giver.tok, nil))
	if list := decode[app.List[staffing.Swap]](t, c.do(t, "GET", "/api/v1/venues/"+c.venue+"/staffing/swaps", nil).Body).Items; len(list) != 3 || list[0].Status != staffing.SwapAsked {
		t.Fatalf("the venue's swaps: %+v", list)
	}
}

// A colleague asked by name hears of it by mail (through the core's
// outbox), and when they accept at the instant the giver withdraws, one of
// the two wins: twenty pairs race through the API, and for each the
// database holds the winner's outcome and the loser heard swap_not_open.
func TestNamedSwapAcceptRacesWithdraw(t *testing.T) {
	e := startEnv(t, nil)
	c := newChain(t, e, "swapnamed")
	const pairs = 20
	bar := c.shift(t, "bar", c.eventAt.Add(-time.Hour), c.eventAt.Add(4*time.Hour), pairs)
	c.publish(t, c.eventAt)
	type pair struct {
		giver, taker person
		swap         string
	}
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i].giver = c.staff(t, fmt.Sprintf("giver-%02d", i), true, []string{"bar"}, nil)
		ps[i].taker = c.staff(t, fmt.Sprintf("taker-%02d", i), true, []string{"bar"}, nil)
		asg := decode[staffing.Assignment](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/shifts/"+bar+"/signup", ps[i].giver.tok, nil)))
		sw := decode[staffing.Swap](t, mustCreated(t, e.Do(t, "POST", c.slug, "/api/v1/staffing/me/assignments/"+asg.ID.String()+"/swap", ps[i].giver.tok,
			map[string]any{"colleague_id": ps[i].taker.id})))
		if sw.ToStaff == nil || sw.ToStaff.String() != ps[i].taker.id || sw.Status != staffing.SwapAsked {
			t.Fatalf("asked by name: %+v", sw)
		}
		ps[i].swap = sw.ID.String()
	}
	// Each named colleague is mailed once, with the giver's name.
	for _, p := range ps {
		if n := c.count(t, `SELECT count(*) FROM mail_outbox WHERE to_email = ? AND kind = 'staffing.swap_asked' AND ref = ?`, p.taker.email, p.swap); n != 1 {
			t.Fatalf("%d mails queued to %s", n, p.taker.email)
		}
	}
	// The core sends them: each reads who asks, and when in the venue's time.
	if _, err := e.App.Mail.SendDue(context.Background(), c.t, 100); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		got := mailsOf(e, p.taker.email, fmt.Sprintf("giver-%02d asks you to take a shift", i))
		if len(got) != 1 || !strings.Contains(got[0].Text, c.eventAt.Add(-time.Hour).In(newYork).Format("15:04")) {
			t.Fatalf("mail to %s: %+v", p.taker.email, got)
		}
	}

	type result struct{ accept, withdraw apptest.Response }
	results := make([]result, pairs)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range ps {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			results[i].accept, _ = e.Try("POST", c.slug, "/api/v1/staffing/me/swaps/"+p.swap+"/accept", p.taker.tok, nil)
		}()
		go func() {
			defer wg.Done()
			<-start
			results[i].withdraw, _ = e.Try("POST", c.slug, "/api/v1/staffing/me/swaps/"+p.swap+"/withdraw", p.giver.tok, nil)
		}()
	}
	close(start)
	wg.Wait()
	accepted, withdrawn := 0, 0
	for i, p := range ps {
		r := results[i]
		var status string
		var taker *string
		err := e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT status, taker::text FROM stf_swaps WHERE id = ?`, p.swap).Row().Scan(&status, &taker)
		})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.accept.Status == http.StatusOK && r.withdraw.Status == http.StatusConflict && r.withdraw.Code() == "swap_not_open":
			if status != staffing.SwapAccepted || taker == nil || *taker != p.taker.id {
				t.Fatalf("pair %d: the accept won, the database says %s (taker %v)", i, status, taker)
			}
			accepted++
		case r.withdraw.Status == http.StatusOK && r.accept.Status == http.StatusConflict && r.accept.Code() == "swap_not_open":
			if status != staffing.SwapWithdrawn || taker != nil {
				t.Fatalf("pair %d: the withdrawal won, the database says %s (taker %v)", i, status, taker)
			}
			withdrawn++
		default:
			t.Fatalf("pair %d: accept %d %s, withdraw %d %s: not one outcome", i, r.accept.Status, r.accept.Body, r.withdraw.Status, r.withdraw.Body)
		}
	}
	t.Logf("%d accepted first, %d withdrawn first", accepted, withdrawn)
	// Whatever won, the giver still holds the place until a manager approves.
	if n := c.count(t, `SELECT count(*) FROM stf_assignments WHERE shift_id = ? AND status = 'assigned'`, bar); n != pairs {
		t.Fatalf("%d places held, want %d", n, pairs)
	}
}
