package booking

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76/client"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/modules/booking/internal/settlement"
	"marquee/modules/booking/internal/terms"
	"marquee/tenants"
)

// Service holds booking's rules. Each public method opens one tenant
// transaction and passes it to the store's helpers.
type Service struct {
	app    *app.Core
	stripe *client.API // rental deposits
}

// NewService builds the booking service on the core.
func NewService(a *app.Core) *Service { return &Service{app: a, stripe: newStripe(a)} }

// Offer windows: how long the other side has to answer.
const (
	DefaultOfferWindow = 7 * 24 * time.Hour
	MaxOfferWindow     = 180 * 24 * time.Hour
)

func (s *Service) tx(ctx context.Context, t tenants.Tenant, fn func(tx *gorm.DB) error) error {
	return s.app.Tx(ctx, t, fn)
}

// termsProblem turns a refused term into the API's error.
func termsProblem(err error) error {
	var p *terms.Problem
	if !errors.As(err, &p) {
		return err
	}
	// Each code written out, so the codes test can check it is listed.
	switch p.Code {
	case "invalid_amount":
		return app.InvalidField("invalid_amount", p.Field, "%s", p.Detail)
	case "invalid_percentage":
		return app.InvalidField("invalid_percentage", p.Field, "%s", p.Detail)
	case "invalid_currency":
		return app.InvalidField("invalid_currency", p.Field, "%s", p.Detail)
	}
	return app.InvalidField("invalid_terms", p.Field, "%s", p.Detail)
}

func checkTerms(t *terms.Terms) error {
	t.Normalize()
	return termsProblem(t.Validate("terms"))
}

// CreateInput is a new draft offer.
type CreateInput struct {
	ArtistID uuid.UUID
	Title    string
	HoldID   *uuid.UUID
	EventID  *uuid.UUID
	Terms    terms.Terms
}

// Create saves a draft offer for a hold, an event, or no date yet.
func (s *Service) Create(ctx context.Context, t tenants.Tenant, in CreateInput, actor Actor, createdBy *uuid.UUID) (Detail, error) {
	title, err := cleanText("title", in.Title, 200, true)
	if err != nil {
		return Detail{}, err
	}
	if err := checkTerms(&in.Terms); err != nil {
		return Detail{}, err
	}
	b := Booking{ID: uuid.Must(uuid.NewV7()), ArtistID: in.ArtistID, Title: title, HoldID: in.HoldID, EventID: in.EventID}
	switch {
	case in.HoldID != nil && in.EventID != nil:
		return Detail{}, app.InvalidField("invalid_request", "hold_id", "an offer is for a hold or an event, not both")
	case in.HoldID != nil:
		h, err := s.app.Holds().Hold(ctx, t, *in.HoldID)
		if err != nil {
			return Detail{}, err
		}
		if h.Status != "active" {
			return Detail{}, app.Conflict("hold_not_active", "the hold is %s", h.Status)
		}
		b.VenueID = &h.VenueID
	case in.EventID != nil:
		events := s.app.Events()
		if events == nil {
			return Detail{}, app.Unavailable("events_unavailable", 0, "no module provides events")
		}
		e, err := events.Event(ctx, t, *in.EventID)
		if err != nil {
			return Detail{}, err
		}
		b.VenueID = &e.VenueID
	}
	var out Detail
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findArtist(tx, in.ArtistID); err != nil {
			return err
		}
		if err := insertBooking(tx, b, in.Terms, createdBy); err != nil {
			return err
		}
		if err := addHistory(tx, b.ID, actor, "create", "", Draft, nil, ""); err != nil {
			return err
		}
		out, err = detail(tx, b.ID, scope{}, actor.Party)
		return err
	})
	return out, err
}

// detail reads a booking with its current terms, versions and history.
func detail(tx *gorm.DB, id uuid.UUID, sc scope, p Party) (Detail, error) {
	b, err := findBooking(tx, id, sc, false)
	if err != nil {
		return Detail{}, err
	}
	d := Detail{Booking: b, Allowed: Allowed(b.State, b.Awaiting, p)}
	if b.CurrentN == 0 {
		d.Terms, err = draftTerms(tx, id)
	} else {
		var v Version
		v, err = findVersion(tx, id, b.CurrentN)
		d.Terms = v.Terms
	}
	if err != nil {
		return Detail{}, err
	}
	if d.Versions, err = listVersions(tx, id); err != nil {
		return Detail{}, err
	}
	d.History, err = listHistory(tx, id)
	return d, err
}

// Get reads one booking as seen by p (an agent's scope hides the others).
func (s *Service) Get(ctx context.Context, t tenants.Tenant, id uuid.UUID, actor Actor) (Detail, error) {
	var out Detail
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = detail(tx, id, scope{actor.AgentID}, actor.Party)
		return err
	})
	return out, err
}

// List lists bookings, newest first.
func (s *Service) List(ctx context.Context, t tenants.Tenant, f ListFilter, actor Actor) ([]Summary, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var out []Summary
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		out, err = listBookings(tx, f, scope{actor.AgentID})
		return err
	})
	return out, err
}

// Version reads one frozen version of a booking's terms.
func (s *Service) Version(ctx context.Context, t tenants.Tenant, id uuid.UUID, n int, actor Actor) (Version, error) {
	var out Version
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findBooking(tx, id, scope{actor.AgentID}, false); err != nil {
			return err
		}
		var err error
		out, err = findVersion(tx, id, n)
		return err
	})
	return out, err
}

// DiffView is what changed between two versions of the terms.
type DiffView struct {
	From    int            `json:"from"`
	To      int            `json:"to"`
	Changes []terms.Change `json:"changes"`
}

// Diff compares two versions field by field.
func (s *Service) Diff(ctx context.Context, t tenants.Tenant, id uuid.UUID, from, to int, actor Actor) (DiffView, error) {
	out := DiffView{From: from, To: to}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := findBooking(tx, id, scope{actor.AgentID}, false); err != nil {
			return err
		}
		a, err := findVersion(tx, id, from)
		if err != nil {
			return err
		}
		b, err := findVersion(tx, id, to)
		if err != nil {
			return err
		}
		out.Changes, err = terms.Diff(a.Terms, b.Terms)
		return err
	})
	return out, err
}

// TransitionInput is what a transition carries: the version it was decided
// on, and for send and counter the terms and deadline, for decline and
// cancel the reason.
type TransitionInput struct {
	Version   int
	Terms     *terms.Terms
	RespondBy *time.Time
	Reason    string
}

// Transition moves a booking by one verb (send, counter, accept, decline,
// cancel, contract). It is refused with 409 version_mismatch when the
// booking moved on from in.Version, and 409 invalid_transition (naming what
// the actor may do) when the verb does not apply: of two parties acting on
// one version at once, exactly one wins.
func (s *Service) Transition(ctx context.Context, t tenants.Tenant, id uuid.UUID, action string, in TransitionInput, actor Actor) (Detail, error) {
	if in.Version < 1 {
		return Detail{}, app.InvalidField("invalid_version", "version", "version is the booking's version you acted on (1 or more)")
	}
	if in.Terms != nil {
		if err := checkTerms(in.Terms); err != nil {
			return Detail{}, err
		}
	}
	if action == ActCounter && in.Terms == nil {
		return Detail{}, app.InvalidField("invalid_terms", "terms", "a counter-offer carries its terms")
	}
	reason, err := cleanText("reason", in.Reason, 1000, action == ActCancel)
	if err != nil {
		return Detail{}, err
	}
	now := s.app.Now()
	deadline := now.Add(DefaultOfferWindow).UTC().Truncate(time.Second)
	if in.RespondBy != nil {
		if !in.RespondBy.After(now) || in.RespondBy.Sub(now) > MaxOfferWindow {
			return Detail{}, app.InvalidField("invalid_request", "respond_by", "must be in the future, within %d days", int(MaxOfferWindow.Hours()/24))
		}
		deadline = in.RespondBy.UTC()
	}
	var showDate string
	if action == ActAccept {
		showDate = s.showDate(ctx, t, id)
	}
	var out Detail
	var scheduled *time.Time
	var frozen int
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		scheduled = nil
		b, err := findBooking(tx, id, scope{actor.AgentID}, true)
		if err != nil {
			return err
		}
		if b.Version != in.Version {
			return app.Conflict("version_mismatch", "the booking changed since version %d (it is at %d); reload it and retry",
				in.Version, b.Version).With("version", b.Version).With("state", b.State)
		}
		if !allowed(b, actor.Party, action) {
			return app.Conflict("invalid_transition", "the %s cannot %s a booking that is %s", actor.Party, action, b.State).
				With("allowed", Allowed(b.State, b.Awaiting, actor.Party)).With("state", b.State)
		}
		from := b.State
		var termsN *int
		freeze := func(tm terms.Terms) error {
			b.CurrentN++
			n := b.CurrentN
			termsN, frozen = &n, n
			if err := insertVersion(tx, b.ID, n, tm, actor.Party, actor.author()); err != nil {
				return err
			}
			awaiting := actor.Party.other()
			b.Awaiting, b.Deadline, scheduled = &awaiting, &deadline, &deadline
			return nil
		}
		switch action {
		case ActSend:
			tm := in.Terms
			if tm == nil {
				d, err := draftTerms(tx, b.ID)
				if err != nil {
					return err
				}
				tm = &d
			} else if err := saveDraftTerms(tx, b.ID, *tm); err != nil {
				return err
			}
			b.State = OfferSent
			if err := freeze(*tm); err != nil {
				return err
			}
		case ActCounter:
			b.State = CounterOffer
			if err := freeze(*in.Terms); err != nil {
				return err
			}
		case ActAccept:
			n := b.CurrentN
			b.State, b.Awaiting, b.AcceptedN, termsN = Accepted, nil, &n, &n
			if err := s.recordAccepted(tx, b); err != nil {
				return err
			}
			if err := s.draftContract(ctx, tx, t, b, showDate, now); err != nil {
				return err
			}
		case ActDecline:
			b.State, b.Awaiting, b.Reason = Declined, nil, reason
		case ActCancel:
			b.State, b.Awaiting, b.Reason = Cancelled, nil, reason
		case ActContract:
			if err := requireSealed(tx, b.ID); err != nil {
				return err
			}
			termsN = b.AcceptedN
			b.State = Contracted
			if b.HoldID != nil {
				// The hold becomes the show in this transaction: if an event
				// is in the way, nothing here changes either.
				ev, err := s.app.Holds().ConfirmHold(tx, t, *b.HoldID, b.ArtistName)
				if err != nil {
					return err
				}
				b.EventID = &ev
			}
		default:
			return app.NotFound("route")
		}
		if err := saveTransition(tx, b, in.Version); err != nil {
			return err
		}
		if err := addHistory(tx, b.ID, actor, action, from, b.State, termsN, reason); err != nil {
			return err
		}
		out, err = detail(tx, b.ID, scope{actor.AgentID}, actor.Party)
		return err
	})
	if err == nil && scheduled != nil {
		s.scheduleExpiry(ctx, t, id, frozen, *scheduled)
	}
	return out, err
}

// requireSealed refuses to contract a booking whose contract is not sealed:
// a show is booked on a signed copy, never on a promise of signatures.
func requireSealed(tx *gorm.DB, bookingID uuid.UUID) error {
	c, err := findContract(tx, bookingID, true)
	var e *app.Error
	if errors.As(err, &e) && e.Kind == app.KindNotFound {
		return app.Conflict("contract_not_sealed", "the booking has no contract yet; it is contracted once its contract is signed and sealed")
	}
	if err != nil {
		return err
	}
	if c.Status != ContractSealed {
		ct, err := contractView(tx, c)
		if err != nil {
			return err
		}
		return app.Conflict("contract_not_sealed", "the contract is %s; the booking is contracted once every party signed and the signed copy is sealed", c.Status).
			With("contract_status", c.Status).With("unsigned", ct.Unsigned)
	}
	return nil
}

func (a Actor) author() string {
	if a.Name != "" {
		return a.Name
	}
	return a.Kind + ":" + a.ID
}

// recordAccepted writes the accepted financial terms to the ledger in the
// transition's transaction: the guarantee, and each deposit as it falls due.
func (s *Service) recordAccepted(tx *gorm.DB, b Booking) error {
	v, err := findVersion(tx, b.ID, b.CurrentN)
	if err != nil {
		return err
	}
	tm, ref := v.Terms, "booking:"+b.ID.String()
	if tm.GuaranteeMinor > 0 {
		if _, err := s.app.Ledger.Append(tx, "booking.guarantee", ref, tm.GuaranteeMinor, tm.Currency,
			fmt.Sprintf("guarantee to %s, %s (terms v%d)", b.ArtistName, b.Title, v.N)); err != nil {
			return err
		}
	}
	for _, d := range tm.Deposits {
		if _, err := s.app.Ledger.Append(tx, "booking.deposit_due", ref, tm.DepositAmount(d), tm.Currency,
			fmt.Sprintf("deposit %q to %s due %s (terms v%d)", d.Name, b.ArtistName, d.Due, v.N)); err != nil {
			return err
		}
	}
	return nil
}

// scheduleExpiry queues the offer's expiry at its deadline, one task per
// frozen version (a later counter's task has its own id). If Redis is
// unavailable the sweeper still expires the offer within a minute.
func (s *Service) scheduleExpiry(ctx context.Context, t tenants.Tenant, id uuid.UUID, n int, at time.Time) {
	_, err := s.app.Jobs.Enqueue(ctx, t, TaskOfferExpire, expireTask{BookingID: id},
		asynq.ProcessAt(jobs.DueAt(at)), asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(10),
		asynq.TaskID(fmt.Sprintf("booking-offer-expire:%s:%s:%d", t.Slug, id, n)))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.app.Log.Warn("offer expiry not scheduled; the sweeper will expire it", "tenant", t.Slug, "booking", id, "err", err)
	}
}

// ExpireOffer is the expiry task's work: idempotent, and a no-op unless the
// offer is still open and past its deadline.
func (s *Service) ExpireOffer(ctx context.Context, t tenants.Tenant, id uuid.UUID) (bool, error) {
	var done bool
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		done, err = expireOffer(tx, id)
		return err
	})
	return done, err
}

// SweepOffers expires every lapsed open offer of the tenant.
func (s *Service) SweepOffers(ctx context.Context, t tenants.Tenant) (int64, error) {
	const batch = 200
	var total int64
	for {
		var n int64
		err := s.tx(ctx, t, func(tx *gorm.DB) error {
			var err error
			n, err = sweepOffers(tx, batch)
			return err
		})
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// RecordActuals replaces what happened at the show (sales, expenses,
// adjustments, deposits paid) on an accepted or contracted booking.
func (s *Service) RecordActuals(ctx context.Context, t tenants.Tenant, id uuid.UUID, version int, a settlement.Actuals, actor Actor) (Detail, error) {
	if version < 1 {
		return Detail{}, app.InvalidField("invalid_version", "version", "version is the booking's version you acted on (1 or more)")
	}
	var out Detail
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		b, err := findBooking(tx, id, scope{}, true)
		if err != nil {
			return err
		}
		if b.Version != version {
			return app.Conflict("version_mismatch", "the booking changed since version %d (it is at %d); reload it and retry",
				version, b.Version).With("version", b.Version)
		}
		if b.AcceptedN == nil {
			return app.Conflict("no_accepted_terms", "actuals are recorded against accepted terms; the booking is %s", b.State)
		}
		v, err := findVersion(tx, id, *b.AcceptedN)
		if err != nil {
			return err
		}
		if err := checkActuals(v.Terms, &a); err != nil {
			return err
		}
		before, err := readActuals(tx, id)
		if err != nil {
			return err
		}
		if err := saveActuals(tx, id, a, version); err != nil {
			return err
		}
		if err := s.recordDepositPayments(tx, b, v, before.PaidDeposits, a.PaidDeposits); err != nil {
			return err
		}
		if err := addHistory(tx, id, actor, "record_actuals", b.State, b.State, b.AcceptedN, ""); err != nil {
			return err
		}
		out, err = detail(tx, id, scope{}, actor.Party)
		return err
	})
	return out, err
}

// recordDepositPayments puts each deposit newly marked paid on the ledger
// (booking.deposit_paid), and a reversal (booking.deposit_unpaid, negative)
// for one no longer marked paid, so the ledger's sum per deposit is what
// was paid.
func (s *Service) recordDepositPayments(tx *gorm.DB, b Booking, v Version, before, after []string) error {
	was, is := map[string]bool{}, map[string]bool{}
	for _, n := range before {
		was[n] = true
	}
	for _, n := range after {
		is[n] = true
	}
	ref := "booking:" + b.ID.String()
	for _, d := range v.Terms.Deposits {
		amount := v.Terms.DepositAmount(d)
		switch {
		case is[d.Name] && !was[d.Name]:
			if _, err := s.app.Ledger.Append(tx, "booking.deposit_paid", ref, amount, v.Terms.Currency,
				fmt.Sprintf("deposit %q paid to %s (terms v%d)", d.Name, b.ArtistName, v.N)); err != nil {
				return err
			}
		case was[d.Name] && !is[d.Name]:
			if _, err := s.app.Ledger.Append(tx, "booking.deposit_unpaid", ref, -amount, v.Terms.Currency,
				fmt.Sprintf("deposit %q no longer recorded as paid (terms v%d)", d.Name, v.N)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkActuals refuses actuals that do not fit the accepted terms.
func checkActuals(tm terms.Terms, a *settlement.Actuals) error {
	if a.Sales == nil {
		a.Sales = []settlement.Sale{}
	}
	if a.Expenses == nil {
		a.Expenses = []settlement.ExpenseActual{}
	}
	if a.Adjustments == nil {
		a.Adjustments = []settlement.Adjustment{}
	}
	if a.PaidDeposits == nil {
		a.PaidDeposits = []string{}
	}
	tiers := map[string]terms.Tier{}
	for _, tr := range tm.Tiers {
		tiers[tr.Name] = tr
	}
	seen := map[string]bool{}
	for i, x := range a.Sales {
		f := fmt.Sprintf("sales[%d]", i)
		tr, ok := tiers[x.Tier]
		if !ok || seen[x.Tier] {
			return app.InvalidField("invalid_request", f+".tier", "not a tier of the accepted terms, or named twice")
		}
		seen[x.Tier] = true
		if x.Sold < 0 || x.Sold > tr.Sellable() {
			return app.InvalidField("invalid_quantity", f+".sold", "0 to the tier's %d sellable tickets", tr.Sellable())
		}
	}
	if len(a.Expenses) > 200 || len(a.Adjustments) > 100 {
		return app.Invalid("invalid_request", "at most 200 expenses and 100 adjustments")
	}
	for i, e := range a.Expenses {
		f := fmt.Sprintf("expenses[%d]", i)
		if _, err := cleanText(f+".name", e.Name, 100, true); err != nil {
			return err
		}
		if e.ActualMinor < 0 || e.ActualMinor > terms.MaxAmount {
			return app.InvalidField("invalid_amount", f+".actual_minor", "0 to %d minor units", int64(terms.MaxAmount))
		}
	}
	for i, adj := range a.Adjustments {
		f := fmt.Sprintf("adjustments[%d]", i)
		if _, err := cleanText(f+".name", adj.Name, 100, true); err != nil {
			return err
		}
		switch adj.Kind {
		case settlement.Reimbursement, settlement.Deduction, settlement.ArtistBonus:
		default:
			return app.InvalidField("invalid_request", f+".kind", "reimbursement, deduction or bonus")
		}
		if adj.AmountMinor < 1 || adj.AmountMinor > terms.MaxAmount {
			return app.InvalidField("invalid_amount", f+".amount_minor", "1 to %d minor units", int64(terms.MaxAmount))
		}
	}
	deposits := map[string]bool{}
	for _, d := range tm.Deposits {
		deposits[d.Name] = true
	}
	for i, n := range a.PaidDeposits {
		if !deposits[n] {
			return app.InvalidField("invalid_request", fmt.Sprintf("paid_deposits[%d]", i), "not a deposit of the accepted terms")
		}
	}
	return nil
}

// SettlementView is a settlement computed from state.
type SettlementView struct {
	BookingID    uuid.UUID `json:"booking_id"`
	View         string    `json:"view"` // external (artist-facing) or internal (promoter P&L)
	TermsVersion int       `json:"terms_version"`
	// SalesSource says where the tickets sold came from: ticket_facts (the
	// module that sold them) or recorded (the sales recorded on the booking,
	// used while no module provides ticket facts or the show has no event).
	SalesSource string           `json:"sales_source"`
	Note        string           `json:"note"`
	Sheet       settlement.Sheet `json:"sheet"`
	// SheetSHA256 is the digest of the external sheet (what a party
	// acknowledges); Acknowledgments are the parties' agreements.
	SheetSHA256     string           `json:"sheet_sha256"`
	Acknowledgments []Acknowledgment `json:"acknowledgments"`
}

// Settlement computes the sheet from the accepted terms and the actuals.
func (s *Service) Settlement(ctx context.Context, t tenants.Tenant, id uuid.UUID, internal bool) (SettlementView, error) {
	var b Booking
	var v Version
	var a settlement.Actuals
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		if b, err = findBooking(tx, id, scope{}, false); err != nil {
			return err
		}
		if b.AcceptedN == nil {
			return app.Conflict("no_accepted_terms", "a settlement is computed from accepted terms; the booking is %s", b.State)
		}
		if v, err = findVersion(tx, id, *b.AcceptedN); err != nil {
			return err
		}
		a, err = readActuals(tx, id)
		return err
	})
	if err != nil {
		return SettlementView{}, err
	}
	out := SettlementView{BookingID: id, View: "external", TermsVersion: v.N, SalesSource: "recorded", Acknowledgments: []Acknowledgment{},
		Note: "tickets sold as recorded on the booking: no module provides ticket facts"}
	if facts := s.app.TicketFacts(); facts != nil && b.EventID != nil {
		sales, err := facts.SalesByTier(ctx, t, *b.EventID)
		if err != nil {
			return SettlementView{}, err
		}
		a.Sales = a.Sales[:0]
		for _, x := range sales {
			a.Sales = append(a.Sales, settlement.Sale{Tier: x.Tier, Sold: x.Sold})
		}
		out.SalesSource, out.Note = "ticket_facts", "tickets sold as the ticketing module reports them for the event"
	} else if b.EventID == nil {
		out.Note = "tickets sold as recorded on the booking: the show has no event yet"
	}
	sheet := settlement.Compute(v.Terms, a)
	if internal {
		out.View, out.Sheet = "internal", sheet
	} else {
		out.Sheet = sheet.External()
	}
	return out, nil
}
