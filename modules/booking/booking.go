package booking

import (
	"slices"
	"time"

	"github.com/google/uuid"

	"marquee/modules/booking/internal/terms"
)

// State is where an offer stands.
type State string

// States of an offer. draft → offer_sent → counter_offer ⇄ … → accepted →
// contracted; cancelled from any open state (with a reason), declined by
// the side that was asked, expired when the deadline passes unanswered.
const (
	Draft        State = "draft"
	OfferSent    State = "offer_sent"
	CounterOffer State = "counter_offer"
	Accepted     State = "accepted"
	Contracted   State = "contracted"
	Declined     State = "declined"
	Cancelled    State = "cancelled"
	Expired      State = "expired"
)

// States lists every state, in the board's order.
var States = []State{Draft, OfferSent, CounterOffer, Accepted, Contracted, Declined, Cancelled, Expired}

// Open reports whether an answer is awaited (the deadline runs).
func (s State) Open() bool { return s == OfferSent || s == CounterOffer }

// Party is a side of the negotiation.
type Party string

// The two sides: the chain's staff make the offer (promoter), the agent
// answers for the artist.
const (
	Promoter Party = "promoter"
	Artist   Party = "artist"
)

func (p Party) other() Party {
	if p == Promoter {
		return Artist
	}
	return Promoter
}

// Actions are the transitions' verbs, as the routes name them.
const (
	ActSend     = "send"
	ActCounter  = "counter"
	ActAccept   = "accept"
	ActDecline  = "decline"
	ActCancel   = "cancel"
	ActContract = "contract"
)

// Allowed lists what party may do to an offer in its state: the 409 of a
// refused transition names them.
func Allowed(state State, awaiting *Party, p Party) []string {
	answering := awaiting != nil && *awaiting == p
	out := []string{}
	switch state {
	case Draft:
		if p == Promoter {
			out = append(out, ActSend, ActCancel)
		}
	case OfferSent, CounterOffer:
		if answering {
			out = append(out, ActCounter, ActAccept, ActDecline)
		}
		if p == Promoter {
			out = append(out, ActCancel)
		}
	case Accepted:
		if p == Promoter {
			out = append(out, ActContract, ActCancel)
		}
	}
	return out
}

func allowed(b Booking, p Party, action string) bool {
	return slices.Contains(Allowed(b.State, b.Awaiting, p), action)
}

// Actor is who acts, and from where, for the booking's history.
type Actor struct {
	Kind  string // staff, agent or system
	ID    string
	Name  string
	IP    string
	Party Party
	// AgentID restricts an agent to their artists' offers.
	AgentID uuid.UUID
}

// Actors that are not a person.
var (
	systemActor = Actor{Kind: "system", Name: "system", Party: Promoter}
)

// Booking is an offer to an artist, as stored.
type Booking struct {
	ID         uuid.UUID  `gorm:"column:id" json:"id"`
	ArtistID   uuid.UUID  `gorm:"column:artist_id" json:"artist_id"`
	ArtistName string     `gorm:"column:artist_name" json:"artist_name"`
	AgentID    uuid.UUID  `gorm:"column:agent_id" json:"agent_id"`
	AgentName  string     `gorm:"column:agent_name" json:"agent_name"`
	Title      string     `gorm:"column:title" json:"title"`
	HoldID     *uuid.UUID `gorm:"column:hold_id" json:"hold_id"`
	VenueID    *uuid.UUID `gorm:"column:venue_id" json:"venue_id"`
	EventID    *uuid.UUID `gorm:"column:event_id" json:"event_id"`
	State      State      `gorm:"column:state" json:"state"`
	Awaiting   *Party     `gorm:"column:awaiting" json:"awaiting"`
	// Version is the optimistic-lock counter: every change bumps it, and a
	// change that names an older one is refused.
	Version   int        `gorm:"column:version" json:"version"`
	CurrentN  int        `gorm:"column:current_n" json:"terms_version"`
	AcceptedN *int       `gorm:"column:accepted_n" json:"accepted_terms_version"`
	Deadline  *time.Time `gorm:"column:deadline" json:"deadline"`
	Reason    string     `gorm:"column:reason" json:"reason"`
	CreatedAt time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// Version is one frozen version of an offer's terms.
type Version struct {
	N         int         `json:"n"`
	Party     Party       `json:"party"`
	Author    string      `json:"author"`
	CreatedAt time.Time   `json:"created_at"`
	Terms     terms.Terms `json:"terms"`
}

// VersionInfo is a version without its terms, for lists.
type VersionInfo struct {
	N         int       `gorm:"column:n" json:"n"`
	Party     Party     `gorm:"column:party" json:"party"`
	Author    string    `gorm:"column:author" json:"author"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

// HistoryEntry is one action on a booking: who, when, from where.
type HistoryEntry struct {
	ID        int64     `gorm:"column:id" json:"id"`
	At        time.Time `gorm:"column:at" json:"at"`
	ActorKind string    `gorm:"column:actor_kind" json:"actor_kind"`
	ActorID   string    `gorm:"column:actor_id" json:"actor_id"`
	ActorName string    `gorm:"column:actor_name" json:"actor_name"`
	IP        string    `gorm:"column:ip" json:"ip"`
	Action    string    `gorm:"column:action" json:"action"`
	FromState string    `gorm:"column:from_state" json:"from_state"`
	ToState   string    `gorm:"column:to_state" json:"to_state"`
	TermsN    *int      `gorm:"column:terms_n" json:"terms_version"`
	Note      string    `gorm:"column:note" json:"note"`
}

// Detail is a booking with its current terms, versions and history, and
// what the caller may do next.
type Detail struct {
	Booking
	Terms    terms.Terms    `json:"terms"`
	Versions []VersionInfo  `json:"versions"`
	History  []HistoryEntry `json:"history"`
	Allowed  []string       `json:"allowed"`
}

// Summary is a booking in a list.
type Summary struct {
	Booking
	Currency       string `gorm:"column:currency" json:"currency"`
	GuaranteeMinor int64  `gorm:"column:guarantee_minor" json:"guarantee_minor"`
	DealType       string `gorm:"column:deal_type" json:"deal_type"`
}

// Agent represents artists; an agent link gives them their artists' offers.
type Agent struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	Name      string    `gorm:"column:name" json:"name"`
	Email     string    `gorm:"column:email" json:"email"`
	Agency    string    `gorm:"column:agency" json:"agency"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}

// ArtistRecord is an artist and their agent.
type ArtistRecord struct {
	ID        uuid.UUID `gorm:"column:id" json:"id"`
	Name      string    `gorm:"column:name" json:"name"`
	AgentID   uuid.UUID `gorm:"column:agent_id" json:"agent_id"`
	AgentName string    `gorm:"column:agent_name" json:"agent_name"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
}
