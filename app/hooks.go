package app

import (
	"context"
	"time"

	"github.com/google/uuid"

	"marquee/tenants"
)

// TicketSale is one paid order's tickets, told to the modules that follow
// sales (trending lists) after the payment commits.
type TicketSale struct {
	EventID  uuid.UUID
	Quantity int
	At       time.Time
}

// EventOffer is what a module that sells tickets offers for one event, in
// the words a buyer reads: prices are all-in (every mandatory fee included),
// in minor units.
type EventOffer struct {
	EventID  uuid.UUID
	MinPrice int64 // lowest all-in price of a tier on sale or to come, now
	MaxPrice int64 // highest, now
	// RangeMin and RangeMax are the all-in bounds prices may move in (the
	// demand-priced tiers' floors and ceilings; MinPrice/MaxPrice otherwise).
	RangeMin, RangeMax int64
	Currency           string
	Available          int  // tickets left to sell (the seller's counters)
	Dynamic            bool // a tier is demand-priced
}

// TicketOffers is provided by the module that sells tickets (inventory), so
// a module that lists events (search) can show prices and availability
// without its tables.
type TicketOffers interface {
	// Offers returns the offers of the events that sell tickets among ids.
	Offers(ctx context.Context, t tenants.Tenant, ids []uuid.UUID) (map[uuid.UUID]EventOffer, error)
	// SalesByHour counts tickets paid since the given time, per event and
	// hour (trending lists rebuild from it).
	SalesByHour(ctx context.Context, t tenants.Tenant, since time.Time) ([]HourSales, error)
}

// HourSales is what one event sold in one hour (Hour is its start, UTC).
type HourSales struct {
	EventID uuid.UUID `gorm:"column:event_id"`
	Hour    time.Time `gorm:"column:hour"`
	Tickets int       `gorm:"column:tickets"`
}

// TicketOffersContract is the name of the TicketOffers contract.
const TicketOffersContract Contract = "ticket offers"

// Hooks are told of changes after they commit, so a module that keeps a
// derived copy (a search index, a trending list) stays fresh without reading
// the owner's tables. A hook runs in the caller's goroutine and must be
// quick; what it misses (a crash between commit and hook) is repaired by its
// module's periodic rebuild.
type hooks struct {
	eventsChanged []func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)
	offersChanged []func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)
	quotasChanged []func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)
	ticketsSold   []func(ctx context.Context, t tenants.Tenant, s TicketSale)
}

// OnEventsChanged registers fn to hear of events created, changed or
// cancelled (and of venues changed: their events' ids).
func (r *Registrar) OnEventsChanged(fn func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)) {
	r.app.hooks.eventsChanged = append(r.app.hooks.eventsChanged, fn)
}

// OnOffersChanged registers fn to hear of events whose prices or ticket
// setup changed.
func (r *Registrar) OnOffersChanged(fn func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)) {
	r.app.hooks.offersChanged = append(r.app.hooks.offersChanged, fn)
}

// OnQuotasChanged registers fn to hear of events whose channel quotas
// changed through the seller's own routes (its quotas, its whole setup;
// not ChannelSales.SetChannelQuota, whose caller pushes the figure itself).
func (r *Registrar) OnQuotasChanged(fn func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)) {
	r.app.hooks.quotasChanged = append(r.app.hooks.quotasChanged, fn)
}

// OnTicketsSold registers fn to hear of every paid order.
func (r *Registrar) OnTicketsSold(fn func(ctx context.Context, t tenants.Tenant, s TicketSale)) {
	r.app.hooks.ticketsSold = append(r.app.hooks.ticketsSold, fn)
}

// ProvideTicketOffers makes this module the ticket offers of the core. Only
// one module may: a second fails start-up.
func (r *Registrar) ProvideTicketOffers(o TicketOffers) {
	if r.provide(TicketOffersContract) {
		r.app.offers = o
	}
}

// Offers returns the ticket offers (nil when no module provides them).
func (c *Core) Offers() TicketOffers { return c.a.offers }

// EventsChanged tells the modules listening that events changed (the owner
// of events calls it after its commit).
func (c *Core) EventsChanged(ctx context.Context, t tenants.Tenant, ids ...uuid.UUID) {
	notify(ctx, t, ids, c.a.hooks.eventsChanged)
}

// OffersChanged tells the modules listening that events' prices or ticket
// setup changed (the seller calls it after its commit).
func (c *Core) OffersChanged(ctx context.Context, t tenants.Tenant, ids ...uuid.UUID) {
	notify(ctx, t, ids, c.a.hooks.offersChanged)
}

// QuotasChanged tells the modules listening that events' channel quotas
// changed (the seller calls it after its commit).
func (c *Core) QuotasChanged(ctx context.Context, t tenants.Tenant, ids ...uuid.UUID) {
	notify(ctx, t, ids, c.a.hooks.quotasChanged)
}

// notify calls each listener of a change to events ids (none: nothing
// changed, nobody is called).
func notify(ctx context.Context, t tenants.Tenant, ids []uuid.UUID, fns []func(ctx context.Context, t tenants.Tenant, ids []uuid.UUID)) {
	if len(ids) == 0 {
		return
	}
	for _, fn := range fns {
		fn(ctx, t, ids)
	}
}

// TicketsSold tells the modules listening of a paid order (the seller calls
// it after the payment commits).
func (c *Core) TicketsSold(ctx context.Context, t tenants.Tenant, s TicketSale) {
	for _, fn := range c.a.hooks.ticketsSold {
		fn(ctx, t, s)
	}
}
