// Package modules holds the one list of feature modules the core wires in.
package modules

import (
	"marquee/app"
	"marquee/modules/calendar"
	"marquee/modules/inventory"
)

// All returns every feature module, in registration order. Adding a module
// is one line here.
func All() []app.Module {
	return []app.Module{
		calendar.New(),
		inventory.New(),
	}
}
