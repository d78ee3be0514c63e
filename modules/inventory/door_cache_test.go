package inventory_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"marquee/modules/inventory"
)

// A token the door remembers as verified is still judged by its ticket's
// row at every scan: re-issued (transfer, resale), its old token answers
// revoked; re-issued by a key rotation, revoked too; and listed for
// resale, listed. Only the signature check is skipped.
func TestCachedTokenStillRevoked(t *testing.T) {
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "doorcache")
	n := newDoorNight(t, s, 0, 3)
	ctx, svc := t.Context(), inv.Service()
	// Re-entry on: without the revocation, each old token below would admit.
	mustStatus(t, n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"reentry": true}), http.StatusOK)

	// Re-issued after a scan put its token in the cache.
	old := n.floor[0]
	n.mustScan(t, old.Token, "entry", inventory.ResultAdmit)
	n.mustScan(t, old.Token, "exit", inventory.ResultExited)
	if !inv.TokenRemembered(s.t, old.Token) {
		t.Fatal("a scanned token is not remembered: this test would not try the cached way")
	}
	nw, err := svc.ReissueTicket(ctx, s.t, old.ID, inventory.TicketHolder{Name: "New Holder", Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	n.mustScan(t, old.Token, "entry", inventory.ResultRevoked)
	n.mustScan(t, nw.Token, "entry", inventory.ResultAdmit)

	// Re-issued by a rotation with reissue after its token was cached.
	rotated := n.floor[1]
	n.mustScan(t, rotated.Token, "entry", inventory.ResultAdmit)
	n.mustScan(t, rotated.Token, "exit", inventory.ResultExited)
	if !inv.TokenRemembered(s.t, rotated.Token) {
		t.Fatal("scanned token not remembered")
	}
	res := n.do(t, "POST", "/api/v1/events/"+n.ev+"/ticket-keys", map[string]any{"reissue": true})
	mustStatus(t, res, http.StatusCreated)
	n.mustScan(t, rotated.Token, "entry", inventory.ResultRevoked)
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit'`, rotated.ID); c != 1 {
		t.Fatalf("%d admissions of the rotated-out ticket", c)
	}
}

// One ticket whose token the door already remembers (its holder went out)
// is scanned for re-entry by twenty devices at once: exactly one admits,
// the others answer already_admitted naming it.
func TestCachedTokenRaceAdmitsOnce(t *testing.T) {
	env, inv := startEnv(t)
	s := newShop(t, env, inv, "doorcacherace")
	n := newDoorNight(t, s, 0, 1)
	mustStatus(t, n.do(t, "PUT", "/api/v1/events/"+n.ev+"/door", map[string]any{"reentry": true}), http.StatusOK)
	tk := n.floor[0]
	n.mustScan(t, tk.Token, "entry", inventory.ResultAdmit)
	n.mustScan(t, tk.Token, "exit", inventory.ResultExited)
	if !inv.TokenRemembered(s.t, tk.Token) {
		t.Fatal("scanned token not remembered")
	}
	outs := make([]scanOut, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := env.Try("POST", s.slug, "/api/v1/events/"+n.ev+"/checkins", s.tok, map[string]any{"token": tk.Token, "type": "entry",
				"gate": fmt.Sprintf("G%d", i%4), "device_id": fmt.Sprintf("dev-%d", i), "nonce": uuid.NewString()})
			if err != nil || res.Status != http.StatusOK {
				t.Errorf("scan %d: %v %d %s", i, err, res.Status, res.Body)
				return
			}
			res.JSON(t, &outs[i])
		}()
	}
	close(start)
	wg.Wait()
	var admit *scanOut
	for i, o := range outs {
		switch o.Result {
		case inventory.ResultAdmit:
			if admit != nil {
				t.Fatalf("two admits: %+v and %+v", *admit, o)
			}
			admit = &outs[i]
		case inventory.ResultAlreadyAdmitted:
		default:
			t.Fatalf("unexpected answer %+v", o)
		}
	}
	if admit == nil {
		t.Fatal("no admit")
	}
	for _, o := range outs {
		if o.Result == inventory.ResultAlreadyAdmitted && (o.Admission == nil || o.Admission.CheckinID != admit.CheckinID) {
			t.Fatalf("duplicate without the admission: %+v (admit %s)", o, admit.CheckinID)
		}
	}
	if c := n.count(t, `SELECT count(*) FROM inv_checkins WHERE ticket_id = ? AND result = 'admit'`, tk.ID); c != 2 {
		t.Fatalf("%d admissions logged, want 2 (the first entry and one re-entry)", c)
	}
	if c := n.count(t, `SELECT entries FROM inv_door_state WHERE ticket_id = ?`, tk.ID); c != 2 {
		t.Fatalf("%d entries, want 2", c)
	}
}
