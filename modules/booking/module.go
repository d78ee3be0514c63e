// Package booking is the artist-booking module: offers to artists as a
// state machine with immutable term versions, agents who answer through a
// signed link and see only their artists' offers, the accepted money on the
// ledger, and the settlement computed from state after the show.
package booking

import (
	"html/template"
	"net/http"
	"time"

	"marquee/app"
	"marquee/jobs"
	"marquee/policies"
)

// Module is the booking feature module.
type Module struct {
	app   *app.Core
	svc   *Service
	pages *template.Template
	// esign is the external e-signature provider, if any, and connectKeys
	// the HMAC keys its webhook deliveries are signed with.
	esign       ESignProvider
	connectKeys [][]byte
}

// New returns the booking module, ready to register.
func New(opts ...Option) *Module {
	m := &Module{}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Name implements app.Module.
func (m *Module) Name() string { return "booking" }

// Service returns the booking service (after Register).
func (m *Module) Service() *Service { return m.svc }

// Objects of booking's permissions, in its namespace booking.*.
const (
	ObjOffers      = "booking.offers"      // offers, their terms and history
	ObjAgents      = "booking.agents"      // artist agents, artists, agent links
	ObjSettlements = "booking.settlements" // actuals and the internal (P&L) settlement
)

// grants are the default permissions of each role: promoters negotiate;
// finance reads everything and records what the show cost; venue roles see
// nothing of artist deals (owners hold "*").
func grants() []policies.Grant {
	var g []policies.Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, policies.Grant{Role: r, Object: object, Action: action})
		}
	}
	add(ObjOffers, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleSupport)
	add(ObjOffers, policies.Write, policies.RoleChainAdmin, policies.RolePromoter, policies.RoleSupport)
	add(ObjAgents, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleSupport)
	add(ObjAgents, policies.Write, policies.RoleChainAdmin, policies.RolePromoter, policies.RoleSupport)
	add(ObjSettlements, policies.Read, policies.RoleChainAdmin, policies.RoleFinance, policies.RolePromoter, policies.RoleSupport)
	add(ObjSettlements, policies.Write, policies.RoleChainAdmin, policies.RoleFinance, policies.RoleSupport)
	return g
}

// Register implements app.Module.
func (m *Module) Register(r *app.Registrar) error {
	m.app = r.Core()
	m.svc = NewService(m.app)
	m.esignFromConfig(m.app.Config)
	pages, err := parsePages()
	if err != nil {
		return err
	}
	m.pages = pages
	r.Needs(app.CalendarHoldsContract) // offers are made for the calendar's holds, and contracting confirms them
	r.Grants(grants()...)

	read, write := policies.Read, policies.Write
	offers := func(act string) app.Permission { return app.Require(ObjOffers, act) }
	put := func(verb, summary string, ep app.Endpoint) {
		r.API(http.MethodPut, "/bookings/:bookingId/"+verb, offers(write), summary, ep)
	}
	r.API(http.MethodPost, "/bookings", offers(write), "Draft an offer to an artist, for a hold, an event or no date yet", app.Handle(m.create).Created())
	r.API(http.MethodGet, "/bookings", offers(read), "List offers, newest first (cursor pagination)",
		app.Handle(m.list).Query("state", "only offers in this state").Query("artist_id", "only this artist's").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodGet, "/bookings/:bookingId", offers(read), "Read an offer: current terms, versions, history and what you may do", app.Handle(m.get))
	put(ActSend, "Send the offer to the artist's agent (freezes a terms version; 409 with allowed on a wrong state, version_mismatch on a stale version)", app.Handle(m.send))
	put(ActCounter, "Counter the artist's counter-offer with new terms", app.Handle(m.counter))
	put(ActAccept, "Accept the artist's counter-offer (the guarantee and deposits go to the ledger)", app.Handle(m.accept))
	put(ActDecline, "Decline the artist's counter-offer", app.Handle(m.decline))
	put(ActCancel, "Cancel an offer before it is contracted (a reason is required)", app.Handle(m.cancel))
	put(ActContract, "Contract an accepted offer (its calendar hold becomes the event)", app.Handle(m.contract))
	r.API(http.MethodPut, "/bookings/:bookingId/actuals", app.Require(ObjSettlements, write), "Record the show's sales, expenses, adjustments and paid deposits", app.Handle(m.recordActuals))
	r.API(http.MethodGet, "/bookings/:bookingId/versions/:n", offers(read), "Read one frozen version of the terms", app.Handle(m.version))
	r.API(http.MethodGet, "/bookings/:bookingId/diff", offers(read), "What changed between two versions, field by field", app.Handle(m.diff).Query("from", "version number").Query("to", "version number"))
	r.API(http.MethodGet, "/bookings/:bookingId/settlement", offers(read), "The settlement computed from the accepted terms and the actuals",
		app.Handle(m.settlement).Query("view", "external (artist-facing, the default) or internal (the promoter's P&L; booking.settlements:read)"))

	r.API(http.MethodPost, "/booking/agents", app.Require(ObjAgents, write), "Add an artist agent", app.Handle(m.createAgent).Created())
	r.API(http.MethodGet, "/booking/agents", app.Require(ObjAgents, read), "List artist agents", app.Handle(m.listAgents))
	r.API(http.MethodPost, "/booking/agents/:agentId/links", app.Require(ObjAgents, write), "Sign an expiring link for an agent (their artists' offers only)", app.Handle(m.createLink).Created())
	r.API(http.MethodPost, "/booking/artists", app.Require(ObjAgents, write), "Add an artist and name their agent", app.Handle(m.createArtist).Created())
	r.API(http.MethodGet, "/booking/artists", app.Require(ObjAgents, read), "List artists", app.Handle(m.listArtists))

	// The agent's side: the link's token in X-Agent-Token, no sign-in.
	agent := app.Public()
	r.API(http.MethodGet, "/agent/bookings", agent, "Agent: your artists' offers (X-Agent-Token)", app.Handle(m.agentList).Query("state", "").Query("after", "cursor").Query("limit", "1 to 200 (50)"))
	r.API(http.MethodGet, "/agent/bookings/:bookingId", agent, "Agent: read one of your artists' offers (X-Agent-Token)", app.Handle(m.agentGet))
	r.API(http.MethodGet, "/agent/bookings/:bookingId/versions/:n", agent, "Agent: read a frozen version (X-Agent-Token)", app.Handle(m.agentVersion))
	r.API(http.MethodGet, "/agent/bookings/:bookingId/diff", agent, "Agent: compare two versions (X-Agent-Token)", app.Handle(m.agentDiff).Query("from", "").Query("to", ""))
	r.API(http.MethodPut, "/agent/bookings/:bookingId/counter", agent, "Agent: counter the offer with new terms (X-Agent-Token)", app.Handle(m.agentCounter))
	r.API(http.MethodPut, "/agent/bookings/:bookingId/accept", agent, "Agent: accept the offer (X-Agent-Token)", app.Handle(m.agentAccept))
	r.API(http.MethodPut, "/agent/bookings/:bookingId/decline", agent, "Agent: decline the offer (X-Agent-Token)", app.Handle(m.agentDecline))

	// Contracts: rendered at acceptance, signed by each party, sealed once.
	r.API(http.MethodGet, "/booking/contract-template", offers(read), "The chain's contract clauses (the default ones until edited)", app.Handle(m.getTemplate))
	r.API(http.MethodPut, "/booking/contract-template", offers(write), "Replace the chain's contract clauses (contracts already rendered keep theirs)", app.Handle(m.putTemplate))
	r.API(http.MethodGet, "/bookings/:bookingId/contract", offers(read), "The contract of an accepted offer: its document digest, signatures and seal", app.Handle(m.getContract))
	r.API(http.MethodGet, "/bookings/:bookingId/contract/pdf", offers(read), "The contract PDF, or its signed copy (?copy=signed)",
		app.Raw(m.contractPDF).Produces("application/pdf", "").Query("copy", "original (default) or signed"))
	r.API(http.MethodPut, "/bookings/:bookingId/contract/sign", offers(write), "Sign the contract for the promoter (click-to-sign over its SHA-256)", app.Handle(m.signContract))
	r.API(http.MethodPut, "/bookings/:bookingId/contract/seal", offers(write), "Seal the signed contract now (after a failed attempt; refused once sealed)", app.Handle(m.sealContract)).NoBody()
	r.API(http.MethodPut, "/bookings/:bookingId/contract/esign", offers(write), "Send the contract to the e-signature provider instead of click-to-sign", app.Handle(m.esignContract)).NoBody()
	r.API(http.MethodGet, "/agent/bookings/:bookingId/contract", agent, "Agent: the contract of one of your artists' offers (X-Agent-Token)", app.Handle(m.agentContract))
	r.API(http.MethodGet, "/agent/bookings/:bookingId/contract/pdf", agent, "Agent: the contract PDF or its signed copy (X-Agent-Token)",
		app.Raw(m.agentContractPDF).Produces("application/pdf", "").Query("copy", "original (default) or signed"))
	r.API(http.MethodPut, "/agent/bookings/:bookingId/contract/sign", agent, "Agent: sign the contract for the artist (X-Agent-Token)", app.Handle(m.agentSign))
	r.API(http.MethodPost, "/booking/esign/connect", app.Public(), "E-signature provider webhook (DocuSign Connect: HMAC-SHA256 of the raw body in X-DocuSign-Signature-1)",
		app.Raw(m.connectWebhook).Accepts("application/json", ConnectMessage{}).Produces("application/json", ConnectResult{}))
	r.Task(TaskContractSeal, m.sealTaskRun)

	// Settlement: exports and both parties' acknowledgments.
	r.API(http.MethodGet, "/bookings/:bookingId/settlement/export", offers(read), "The settlement sheet as PDF or CSV (view=internal: booking.settlements:read)",
		app.Raw(m.settlementExport).Produces("application/pdf", "").Produces("text/csv", "").Query("format", "pdf (default) or csv").Query("view", "external (default) or internal"))
	r.API(http.MethodPut, "/bookings/:bookingId/settlement/acknowledge", offers(write), "Acknowledge the settlement for the promoter (over the sheet's SHA-256)", app.Handle(m.acknowledge))
	r.API(http.MethodGet, "/agent/bookings/:bookingId/settlement", agent, "Agent: the external settlement sheet (X-Agent-Token)", app.Handle(m.agentSettlement))
	r.API(http.MethodGet, "/agent/bookings/:bookingId/settlement/export", agent, "Agent: the external settlement as PDF or CSV (X-Agent-Token)",
		app.Raw(m.agentSettlementExport).Produces("application/pdf", "").Produces("text/csv", "").Query("format", "pdf (default) or csv"))
	r.API(http.MethodPut, "/agent/bookings/:bookingId/settlement/acknowledge", agent, "Agent: acknowledge the settlement for the artist (X-Agent-Token)", app.Handle(m.agentAcknowledge))

	r.Portal(http.MethodGet, "/bookings", offers(read), m.boardPage)
	r.Portal(http.MethodGet, "/bookings/:bookingId", offers(read), m.detailPage)
	r.Nav("Bookings", "/portal/bookings", 20, offers(read))
	r.Portal(http.MethodPost, "/bookings/:bookingId/contract/sign", offers(write), m.portalSign)
	r.Portal(http.MethodPost, "/bookings/:bookingId/contract/seal", offers(write), m.portalSeal)
	// The agent's pages: the signed link's token in ?token=, no sign-in.
	r.Storefront(http.MethodGet, "/agent", app.Public(), m.agentHomePage)
	r.Storefront(http.MethodGet, "/agent/bookings/:bookingId", app.Public(), m.agentOfferPage)
	r.Storefront(http.MethodGet, "/agent/bookings/:bookingId/contract.pdf", app.Public(), m.agentContractFile)
	r.Storefront(http.MethodGet, "/agent/bookings/:bookingId/settlement", app.Public(), m.agentSettlementPage)
	r.Storefront(http.MethodGet, "/agent/bookings/:bookingId/settlement/export", app.Public(), m.agentSettlementFile)
	r.Portal(http.MethodGet, "/bookings/:bookingId/settlement", offers(read), m.settlementPage)
	r.Portal(http.MethodPost, "/bookings/:bookingId/settlement/acknowledge", offers(write), m.portalAcknowledge)

	// Venue rentals: a held date rented to an outside promoter, confirmed
	// once its deposit is paid through Stripe, invoiced with a number per
	// chain.
	r.API(http.MethodPost, "/rentals", offers(write), "Rent a held date to an outside promoter: fee, deposit, add-ons", app.Handle(m.createRental).Created())
	r.API(http.MethodGet, "/rentals", offers(read), "List venue rentals, newest first", app.Handle(m.listRentals))
	r.API(http.MethodGet, "/rentals/:rentalId", offers(read), "Read a rental: terms, totals, deposit, invoice and history", app.Handle(m.getRental))
	r.API(http.MethodPut, "/rentals/:rentalId/deposit/payment", offers(write), "Open (once) the Stripe PaymentIntent for the rental's deposit", app.Handle(m.depositPayment)).NoBody()
	r.API(http.MethodPut, "/rentals/:rentalId/confirm", offers(write), "Confirm the rental's hold as the event (only once the deposit is paid)", app.Handle(m.confirmRental)).NoBody()
	r.API(http.MethodPut, "/rentals/:rentalId/invoice", offers(write), "Issue the rental's invoice (once; numbered per chain without gaps)", app.Handle(m.issueInvoice)).NoBody()
	r.API(http.MethodGet, "/rentals/:rentalId/invoice/pdf", offers(read), "The rental's invoice PDF", app.Raw(m.invoicePDF).Produces("application/pdf", ""))
	r.PlatformAPI(http.MethodPost, RentalsWebhookPath, app.Public(), "Stripe webhook for venue rental deposits, on the base host (signature verified; routed by the PaymentIntent's metadata)",
		app.Raw(m.rentalsWebhook).Accepts("application/json", map[string]any{}).Produces("application/json", RentalWebhookResult{}))
	r.Portal(http.MethodGet, "/rentals", offers(read), m.rentalsPage)
	r.Portal(http.MethodPost, "/rentals", offers(write), m.portalCreateRental)
	r.Portal(http.MethodGet, "/rentals/:rentalId", offers(read), m.rentalPage)
	r.Portal(http.MethodPost, "/rentals/:rentalId/deposit", offers(write), m.rentalAction(m.portalDeposit))
	r.Portal(http.MethodPost, "/rentals/:rentalId/confirm", offers(write), m.rentalAction(m.portalConfirmRental))
	r.Portal(http.MethodPost, "/rentals/:rentalId/invoice", offers(write), m.rentalAction(m.portalInvoice))
	r.Nav("Rentals", "/portal/rentals", 21, offers(read))

	r.Task(TaskOfferExpire, m.expireTask)
	r.Task(TaskOfferSweep, m.sweepTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: TaskOfferSweep, Queue: jobs.QueueDefault, Bucket: time.Minute})
	r.Seed(m.seed, "calendar")
	return nil
}
