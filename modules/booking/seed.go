package booking

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/booking/internal/settlement"
	"marquee/modules/booking/internal/terms"
	"marquee/tenants"
)

// Demo agents' emails (acme's demo data).
const (
	DemoAgentEmail      = "maya@northstar-agency.test"
	DemoOtherAgentEmail = "leo@bluewave-artists.test"
)

func ptr[T any](v T) *T { return &v }

// demoTerms are the terms of a club show at scale: a guarantee, a deal, two
// tiers, capped expenses, a deposit, a withholding.
func demoTerms(guarantee int64, deal terms.Deal, deposit bool) terms.Terms {
	t := terms.Terms{Currency: "USD", GuaranteeMinor: guarantee, Deal: deal, PromoterProfitBps: 1500,
		Tiers: []terms.Tier{{Name: "GA", PriceMinor: 3500, Allotment: 1400, Comps: 40, Kills: 10},
			{Name: "Balcony", PriceMinor: 5500, Allotment: 400, Comps: 20}},
		FacilityFeeMinor: 250, TaxRateBps: 888, TaxInclusive: true,
		Expenses: []terms.Expense{{Name: "Rent", BudgetMinor: 800000}, {Name: "Sound & lights", BudgetMinor: 350000, CapMinor: ptr(int64(400000))},
			{Name: "Security", BudgetMinor: 220000}, {Name: "Advertising", BudgetMinor: 300000, CapMinor: ptr(int64(300000))}},
		Withholdings: []terms.Withholding{{Jurisdiction: "NY State", ThresholdMinor: 100000, Bps: 200}},
		Merch:        terms.Merch{SoftArtistBps: 8000, HardArtistBps: 9000},
		Rider:        "Hospitality for 8; 4 bottles of still water on stage; towels.", TechnicalNeeds: "FOH console with 32 channels; 6 monitor mixes.",
		Billing: "Headline", SetMinutes: 90, Radius: terms.Radius{Miles: 50, DaysBefore: 30, DaysAfter: 30}}
	if deposit {
		t.Deposits = []terms.Deposit{{Name: "On signing", Kind: terms.DepositPercent, Bps: 5000, Due: time.Now().AddDate(0, 0, 14).Format("2006-01-02")}}
	}
	return t
}

// seed gives a demo chain two agents, their artists, and offers in every
// state but expired (which the deadline alone reaches): a draft, one sent,
// one countered by the agent, one accepted, one contracted for a calendar
// hold with its show's actuals recorded, one declined, one cancelled.
func (m *Module) seed(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
	s := m.svc
	maya, err := s.CreateAgent(ctx, t, AgentInput{Name: "Maya Okafor", Email: DemoAgentEmail, Agency: "Northstar Agency"})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	leo, err := s.CreateAgent(ctx, t, AgentInput{Name: "Leo Brandt", Email: DemoOtherAgentEmail, Agency: "Bluewave Artists"})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	artists := map[string]uuid.UUID{}
	for _, a := range []struct {
		name  string
		agent uuid.UUID
	}{{"Velvet Static", maya.ID}, {"Nova Lights", maya.ID}, {"Hollow Pines", maya.ID}, {"Brass Tide", leo.ID}, {"Saint Juniper", leo.ID}, {"Copper Kites", leo.ID}, {"Low Orbit", maya.ID}} {
		r, err := s.CreateArtist(ctx, t, a.name, a.agent)
		if err != nil {
			return fmt.Errorf("artist %s: %w", a.name, err)
		}
		artists[a.name] = r.ID
	}
	staff := Actor{Kind: "staff", Name: "demo promoter", IP: "127.0.0.1", Party: Promoter}
	agentOf := func(a Agent) Actor {
		return Actor{Kind: "agent", ID: a.ID.String(), Name: a.Name + " <" + a.Email + ">", IP: "203.0.113.7", Party: Artist, AgentID: a.ID}
	}
	versus := terms.Deal{Type: terms.DealVersus, Basis: terms.BasisNet, ArtistBps: 8500}
	plus := terms.Deal{Type: terms.DealPlus, ArtistBps: 7000}
	door := terms.Deal{Type: terms.DealDoor, Basis: terms.BasisNetGross, ArtistBps: 6000}
	flat := terms.Deal{Type: terms.DealFlat}

	create := func(artist, title string, tm terms.Terms, hold *uuid.UUID) (Detail, error) {
		return s.Create(ctx, t, CreateInput{ArtistID: artists[artist], Title: title, Terms: tm, HoldID: hold}, staff, nil)
	}
	step := func(d Detail, action string, actor Actor, in TransitionInput) (Detail, error) {
		in.Version = d.Version
		return s.Transition(ctx, t, d.ID, action, in, actor)
	}
	hours := func(h int) *time.Time {
		return ptr(time.Now().Add(time.Duration(h) * time.Hour).UTC().Truncate(time.Minute))
	}
	run := func(title string, fns ...func() error) error {
		for _, fn := range fns {
			if err := fn(); err != nil {
				return fmt.Errorf("demo offer %s: %w", title, err)
			}
		}
		return nil
	}
	var d Detail
	var errs []error
	// A draft.
	errs = append(errs, run("draft", func() (err error) {
		_, err = create("Low Orbit", "Low Orbit — album launch", demoTerms(600000, flat, false), nil)
		return
	}))
	// Sent, the artist's answer awaited for three days.
	errs = append(errs, run("sent", func() (err error) {
		d, err = create("Nova Lights", "Nova Lights — spring tour, New York", demoTerms(1500000, versus, true), nil)
		return
	}, func() (err error) {
		_, err = step(d, ActSend, staff, TransitionInput{RespondBy: hours(72)})
		return
	}))
	// Countered by the agent: a higher guarantee and a bigger share; the
	// promoter must answer within a day and a half.
	errs = append(errs, run("countered", func() (err error) {
		d, err = create("Velvet Static", "Velvet Static — two nights", demoTerms(2000000, versus, true), nil)
		return
	}, func() (err error) {
		d, err = step(d, ActSend, staff, TransitionInput{RespondBy: hours(96)})
		return
	}, func() (err error) {
		counter := demoTerms(2500000, terms.Deal{Type: terms.DealVersus, Basis: terms.BasisNet, ArtistBps: 9000}, true)
		counter.Rider += " A vegan meal for the drummer."
		_, err = step(d, ActCounter, agentOf(maya), TransitionInput{Terms: &counter, RespondBy: hours(36)})
		return
	}))
	// Accepted by the agent (the guarantee and deposit are on the ledger).
	errs = append(errs, run("accepted", func() (err error) {
		d, err = create("Saint Juniper", "Saint Juniper — summer rooftop", demoTerms(800000, plus, true), nil)
		return
	}, func() (err error) {
		d, err = step(d, ActSend, staff, TransitionInput{})
		return
	}, func() (err error) {
		_, err = step(d, ActAccept, agentOf(leo), TransitionInput{})
		return
	}))
	// Contracted, for a calendar hold which becomes the show; its actuals
	// are recorded, so its settlement reads as after the night.
	var hold *uuid.UUID
	if hs, err := m.app.Holds().ActiveHolds(ctx, t, 20); err == nil {
		for _, h := range hs {
			if h.Rank == 1 {
				hold = &h.ID
				break
			}
		}
	}
	errs = append(errs, run("contracted", func() (err error) {
		d, err = create("Hollow Pines", "Hollow Pines — headline show", demoTerms(1200000, versus, true), hold)
		return
	}, func() (err error) {
		d, err = step(d, ActSend, staff, TransitionInput{})
		return
	}, func() (err error) {
		d, err = step(d, ActAccept, agentOf(maya), TransitionInput{})
		return
	}, func() (err error) {
		// Both parties sign the contract and it is sealed, as the seal job
		// would (the job queued by the last signature then finds it sealed).
		ct, err := s.Contract(ctx, t, d.ID, staff)
		if err != nil {
			return err
		}
		if _, err = s.Sign(ctx, t, d.ID, SignInput{Name: "Dana Reyes, talent buyer", DocumentSHA256: ct.SHA256}, staff); err != nil {
			return err
		}
		if _, err = s.Sign(ctx, t, d.ID, SignInput{Name: "Maya Ortiz for Hollow Pines", DocumentSHA256: ct.SHA256}, agentOf(maya)); err != nil {
			return err
		}
		_, err = s.Seal(ctx, t, d.ID, systemActor)
		return
	}, func() (err error) {
		d, err = step(d, ActContract, staff, TransitionInput{})
		return
	}, func() (err error) {
		_, err = s.RecordActuals(ctx, t, d.ID, d.Version, settlement.Actuals{
			Sales:        []settlement.Sale{{Tier: "GA", Sold: 1310}, {Tier: "Balcony", Sold: 352}},
			Expenses:     []settlement.ExpenseActual{{Name: "Rent", ActualMinor: 800000}, {Name: "Sound & lights", ActualMinor: 436000}, {Name: "Security", ActualMinor: 241000}, {Name: "Advertising", ActualMinor: 275000}},
			Adjustments:  []settlement.Adjustment{{Name: "Hotel buyout", Kind: settlement.Reimbursement, AmountMinor: 45000}, {Name: "Backline rental", Kind: settlement.Deduction, AmountMinor: 30000, MovesSplitPoint: true}},
			PaidDeposits: []string{"On signing"}}, staff)
		return
	}, func() error {
		// The night is settled: both sides acknowledged the sheet, so its
		// walkout and withholdings are on the ledger.
		for _, who := range []struct {
			actor Actor
			name  string
		}{{staff, "Dana Reyes"}, {agentOf(maya), "Maya Ortiz"}} {
			v, err := s.SettlementAs(ctx, t, d.ID, false, who.actor)
			if err != nil {
				return err
			}
			if _, err := s.Acknowledge(ctx, t, d.ID, AckInput{Name: who.name, SheetSHA256: v.SheetSHA256}, who.actor); err != nil {
				return err
			}
		}
		return nil
	}))
	// Declined by the agent.
	errs = append(errs, run("declined", func() (err error) {
		d, err = create("Brass Tide", "Brass Tide — club night", demoTerms(0, door, false), nil)
		return
	}, func() (err error) {
		d, err = step(d, ActSend, staff, TransitionInput{})
		return
	}, func() (err error) {
		_, err = step(d, ActDecline, agentOf(leo), TransitionInput{Reason: "The band is in the studio that month."})
		return
	}))
	// Cancelled by the promoter.
	errs = append(errs, run("cancelled", func() (err error) {
		d, err = create("Copper Kites", "Copper Kites — festival warm-up", demoTerms(400000, flat, false), nil)
		return
	}, func() (err error) {
		_, err = step(d, ActCancel, staff, TransitionInput{Reason: "The festival moved its date."})
		return
	}))
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return m.seedRentals(ctx, t, staff, hold)
}
