// Package limits stops hoarders and card testers: per-device hold and order
// rates (per address for a client that sends no signed device id; Redis,
// go-redis/redis_rate), and at checkout a small rule engine over what the
// database knows of the buyer (tickets per e-mail, per device and per
// address across orders, declined payments in the last hour, how fast the
// checkout was) that scores the order and decides allow, challenge, review
// or block, each decision recorded with its reasons. A challenge is met by
// a CAPTCHA (captcha.go). Thresholds are the chain's.
package limits

import "fmt"

// Actions, from mild to severe.
const (
	Allow     = "allow"
	Challenge = "challenge" // prove a human (a CAPTCHA) before trying again
	Review    = "review"    // let it through, and put it in box office's queue
	Block     = "block"
)

var severity = map[string]int{Allow: 0, Review: 1, Challenge: 2, Block: 3}

// Thresholds are a chain's tunable limits.
type Thresholds struct {
	MaxTicketsPerEmail  int `json:"max_tickets_per_email" gorm:"column:max_tickets_per_email"`
	MaxTicketsPerIP     int `json:"max_tickets_per_ip" gorm:"column:max_tickets_per_ip"`
	DeclinesToChallenge int `json:"declines_to_challenge" gorm:"column:declines_to_challenge"`
	DeclinesToBlock     int `json:"declines_to_block" gorm:"column:declines_to_block"`
	MinCheckoutSeconds  int `json:"min_checkout_seconds" gorm:"column:min_checkout_seconds"`
	IPHoldsPerMinute    int `json:"ip_holds_per_minute" gorm:"column:ip_holds_per_minute"`
	IPOrdersPerMinute   int `json:"ip_orders_per_minute" gorm:"column:ip_orders_per_minute"`
	// MaxTicketsPerCard counts paid tickets per payment card and event,
	// whatever e-mail or address paid; 0 in a request means the default.
	MaxTicketsPerCard int `json:"max_tickets_per_card,omitempty" gorm:"column:max_tickets_per_card"`
	// MaxTicketsPerDevice counts a device's paid or pending tickets per
	// event, whatever e-mails or buyer tokens it used; 0 in a request means
	// the default.
	MaxTicketsPerDevice int `json:"max_tickets_per_device,omitempty" gorm:"column:max_tickets_per_device"`
}

// DefaultThresholds are those of a chain that set none (the table's defaults).
func DefaultThresholds() Thresholds {
	return Thresholds{MaxTicketsPerEmail: 8, MaxTicketsPerIP: 24, DeclinesToChallenge: 2, DeclinesToBlock: 3,
		MinCheckoutSeconds: 4, IPHoldsPerMinute: 60, IPOrdersPerMinute: 20, MaxTicketsPerCard: 8, MaxTicketsPerDevice: 8}
}

// Signals are what is known of a checkout when it is decided.
type Signals struct {
	Tickets         int // in this order
	TicketsByEmail  int // the e-mail's other paid or pending tickets for the event
	TicketsByIP     int // the address's other paid or pending tickets for the event
	TicketsByDevice int // the device's other paid or pending tickets for the event
	Device          bool
	DeclinesByBuyer int // declined payments of the buyer (token or e-mail) in the last hour
	DeclinesByIP    int // declined payments from the address or the device in the last hour
	// Human is set when the buyer solved a CAPTCHA for this checkout: a
	// challenge is then met, and the checkout goes to review instead.
	Human           bool
	CheckoutSeconds float64
}

// Reason is one rule that fired.
type Reason struct {
	Rule   string `json:"rule"`
	Points int    `json:"points"`
	Detail string `json:"detail"`
}

// Decision is the engine's answer.
type Decision struct {
	Score   int      `json:"score"`
	Action  string   `json:"action"`
	Reasons []Reason `json:"reasons"`
}

// Decide runs the rules. Each rule that fires adds points and asks for an
// action; the most severe action asked for wins.
func Decide(s Signals, th Thresholds) Decision {
	d := Decision{Action: Allow, Reasons: []Reason{}}
	fire := func(rule string, points int, action, detail string) {
		d.Score += points
		d.Reasons = append(d.Reasons, Reason{Rule: rule, Points: points, Detail: detail})
		if severity[action] > severity[d.Action] {
			d.Action = action
		}
	}
	if total := s.TicketsByEmail + s.Tickets; total > th.MaxTicketsPerEmail {
		fire("tickets_per_email", 60, Block, fmt.Sprintf("%d tickets for this e-mail at this event, the limit is %d", total, th.MaxTicketsPerEmail))
	}
	if total := s.TicketsByIP + s.Tickets; total > th.MaxTicketsPerIP {
		fire("tickets_per_ip", 30, Review, fmt.Sprintf("%d tickets from this address at this event, more than %d", total, th.MaxTicketsPerIP))
	}
	if total := s.TicketsByDevice + s.Tickets; s.Device && total > th.MaxTicketsPerDevice {
		fire("tickets_per_device", 60, Block, fmt.Sprintf("%d tickets from this device at this event, the limit is %d", total, th.MaxTicketsPerDevice))
	}
	declines := max(s.DeclinesByBuyer, s.DeclinesByIP)
	switch {
	case declines >= th.DeclinesToBlock:
		fire("card_testing", 80, Block, fmt.Sprintf("%d declined payments in the last hour (block from %d)", declines, th.DeclinesToBlock))
	case declines >= th.DeclinesToChallenge:
		fire("card_testing", 40, Challenge, fmt.Sprintf("%d declined payments in the last hour (challenge from %d)", declines, th.DeclinesToChallenge))
	}
	if th.MinCheckoutSeconds > 0 && s.CheckoutSeconds < float64(th.MinCheckoutSeconds) {
		fire("fast_checkout", 25, Review, fmt.Sprintf("checked out %.1f s after the hold, faster than %d s", s.CheckoutSeconds, th.MinCheckoutSeconds))
	}
	if d.Action == Challenge && s.Human {
		d.Reasons = append(d.Reasons, Reason{Rule: "captcha_solved", Detail: "the buyer solved the CAPTCHA; sent to review"})
		d.Action = Review
	}
	return d
}

// DecideCard is the payment-time rule: a card's paid tickets for an event,
// this payment's included, above the chain's limit are refused (the payment
// is refunded), however many e-mails and addresses the card was used from.
func DecideCard(ticketsByCard, tickets int, th Thresholds) Decision {
	d := Decision{Action: Allow, Reasons: []Reason{}}
	if total := ticketsByCard + tickets; total > th.MaxTicketsPerCard {
		d = Decision{Score: 60, Action: Block, Reasons: []Reason{{Rule: "tickets_per_card", Points: 60,
			Detail: fmt.Sprintf("%d tickets paid with this card at this event, the limit is %d", total, th.MaxTicketsPerCard)}}}
	}
	return d
}
