// Package modules holds the one list of feature modules the core wires in.
package modules

import (
	"marquee/app"
	"marquee/modules/booking"
	"marquee/modules/calendar"
	"marquee/modules/integrations"
	"marquee/modules/inventory"
	"marquee/modules/inventory/queue"
	"marquee/modules/ops"
	"marquee/modules/search"
	"marquee/modules/staffing"
)

// All returns every feature module, in registration order. Adding a module
// is one line here.
func All() []app.Module {
	inv := inventory.New()
	return []app.Module{
		calendar.New(),
		inv,
		queue.NewModule(inv), // the waiting room in front of the inventory's holds
		booking.New(),
		staffing.New(),
		ops.New(),
		integrations.New(), // Ticketmaster and Eventbrite inside their channel quotas
		search.New(),       // after inventory: it takes over the storefront home
	}
}
