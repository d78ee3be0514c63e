package inventory_test

import (
	"net/http"
	"testing"

	"gorm.io/gorm"
)

// A one-ticket sale reads "1 ticket" in the ledger and names its payment.
func TestLedgerMemoOfOneTicket(t *testing.T) {
	t.Parallel()
	s, ev, _ := onSale(t, "memo", "Memo Night", simpleSetup(1, 4, 0, nil))
	buyer := s.buyer(t)
	h := s.mustHold(t, ev, buyer, map[string]any{"seats": []string{"A-1-1"}})
	o := s.order(t, buyer, h.ID)
	mustStatus(t, s.webhook(t, "evt_memo_1", "payment_intent.succeeded", o.Order), http.StatusOK)
	if n := s.count(t, `SELECT count(*) FROM ledger_entries WHERE kind = 'ticket.sale' AND memo = ?`,
		"1 ticket, event "+ev+", payment "+*o.PaymentIntentID); n != 1 {
		var memo string
		s.sql(t, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT memo FROM ledger_entries WHERE kind = 'ticket.sale'`).Row().Scan(&memo)
		})
		t.Fatalf("sale memo %q", memo)
	}
}
