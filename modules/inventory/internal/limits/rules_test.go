package limits_test

import (
	"testing"

	"marquee/modules/inventory/internal/limits"
)

func TestDecide(t *testing.T) {
	th := limits.DefaultThresholds()
	calm := limits.Signals{Tickets: 2, CheckoutSeconds: 60}
	cases := []struct {
		name   string
		s      limits.Signals
		action string
		rules  []string
	}{
		{"an ordinary checkout", calm, limits.Allow, nil},
		{"at the e-mail's limit", limits.Signals{Tickets: 2, TicketsByEmail: 6, CheckoutSeconds: 60}, limits.Allow, nil},
		{"past the e-mail's limit", limits.Signals{Tickets: 2, TicketsByEmail: 7, CheckoutSeconds: 60}, limits.Block, []string{"tickets_per_email"}},
		{"many from one address", limits.Signals{Tickets: 2, TicketsByIP: 23, CheckoutSeconds: 60}, limits.Review, []string{"tickets_per_ip"}},
		{"one decline", limits.Signals{Tickets: 1, DeclinesByBuyer: 1, CheckoutSeconds: 60}, limits.Allow, nil},
		{"two declines", limits.Signals{Tickets: 1, DeclinesByIP: 2, CheckoutSeconds: 60}, limits.Challenge, []string{"card_testing"}},
		{"three declines: the fourth try is blocked", limits.Signals{Tickets: 1, DeclinesByBuyer: 3, CheckoutSeconds: 60}, limits.Block, []string{"card_testing"}},
		{"impossibly fast", limits.Signals{Tickets: 1, CheckoutSeconds: 0.8}, limits.Review, []string{"fast_checkout"}},
		{"past the device's limit", limits.Signals{Tickets: 2, TicketsByDevice: 7, Device: true, CheckoutSeconds: 60}, limits.Block, []string{"tickets_per_device"}},
		{"no device: its count is not a rule", limits.Signals{Tickets: 2, TicketsByDevice: 7, CheckoutSeconds: 60}, limits.Allow, nil},
		{"two declines, CAPTCHA solved: review", limits.Signals{Tickets: 1, DeclinesByIP: 2, CheckoutSeconds: 60, Human: true}, limits.Review, []string{"card_testing", "captcha_solved"}},
		{"three declines, CAPTCHA solved: still blocked", limits.Signals{Tickets: 1, DeclinesByBuyer: 3, CheckoutSeconds: 60, Human: true}, limits.Block, []string{"card_testing"}},
		{"fast and testing cards", limits.Signals{Tickets: 1, DeclinesByIP: 5, CheckoutSeconds: 0.5}, limits.Block, []string{"card_testing", "fast_checkout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := limits.Decide(c.s, th)
			if d.Action != c.action || len(d.Reasons) != len(c.rules) {
				t.Fatalf("%+v, want %s with %v", d, c.action, c.rules)
			}
			sum := 0
			for i, r := range d.Reasons {
				if r.Rule != c.rules[i] || r.Detail == "" {
					t.Fatalf("reason %d: %+v, want %s", i, r, c.rules[i])
				}
				sum += r.Points
			}
			if sum != d.Score {
				t.Fatalf("score %d, reasons add to %d", d.Score, sum)
			}
		})
	}
	// A chain that tunes its thresholds gets its own answers.
	strict := th
	strict.DeclinesToChallenge, strict.DeclinesToBlock = 1, 1
	if d := limits.Decide(limits.Signals{Tickets: 1, DeclinesByBuyer: 1, CheckoutSeconds: 60}, strict); d.Action != limits.Block {
		t.Fatalf("strict chain: %+v", d)
	}
}

func TestDecideCard(t *testing.T) {
	th := limits.DefaultThresholds() // 8 per card
	cases := []struct {
		paid, tickets int
		action        string
	}{
		{0, 2, limits.Allow}, {6, 2, limits.Allow}, {7, 2, limits.Block}, {0, 9, limits.Block},
	}
	for _, c := range cases {
		d := limits.DecideCard(c.paid, c.tickets, th)
		if d.Action != c.action {
			t.Errorf("%d paid + %d: %s, want %s", c.paid, c.tickets, d.Action, c.action)
		}
		if c.action == limits.Block && (len(d.Reasons) != 1 || d.Reasons[0].Rule != "tickets_per_card") {
			t.Errorf("%d paid + %d: reasons %+v", c.paid, c.tickets, d.Reasons)
		}
	}
}
