package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"marquee/tenants"
)

// Contract names a cross-module contract the core wires: one module
// provides it, others declare that they need it (Registrar.Needs).
type Contract string

// The contracts the core knows.
const (
	VenueDirectoryContract     Contract = "venue directory"
	EventDirectoryContract     Contract = "event directory"
	EventCancellationsContract Contract = "event cancellations"
	AttendanceContract         Contract = "attendance"
	CalendarHoldsContract      Contract = "calendar holds"
	TicketFactsContract        Contract = "ticket facts"
	ChannelSalesContract       Contract = "channel sales"
	StaffingCoverageContract   Contract = "staffing coverage"
)

// RoleCoverage is how well one role of an event is staffed: the people
// required, those holding a place (assigned or confirmed), those who
// confirmed, and the gap (required - assigned, when positive).
type RoleCoverage struct {
	Role      string `json:"role"`
	Required  int    `json:"required"`
	Assigned  int    `json:"assigned"`
	Confirmed int    `json:"confirmed"`
	Gap       int    `json:"gap"`
}

// StaffingCoverage is provided by the module that staffs events (staffing),
// so the live dashboard shows who is missing tonight without its tables.
// It is optional: a reader checks Core.StaffingCoverage for nil.
type StaffingCoverage interface {
	// CoverageForEvent answers an event's coverage, role by role (empty
	// when nothing is required or planned); an unknown event is NotFound.
	CoverageForEvent(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]RoleCoverage, error)
}

// ProvideStaffingCoverage makes this module the staffing coverage of the
// core. Only one module may: a second fails start-up.
func (r *Registrar) ProvideStaffingCoverage(c StaffingCoverage) {
	if r.provide(StaffingCoverageContract) {
		r.app.contracts.coverage = c
	}
}

// StaffingCoverage returns the staffing coverage, or nil when no module
// provides it: the dashboard then says nothing of staffing.
func (c *Core) StaffingCoverage() StaffingCoverage { return c.a.contracts.coverage }

// contracts is what the modules declared while registering; check turns a
// wrong declaration into a start-up error instead of a nil at request time.
type contracts struct {
	modules    []string            // registered modules, in order
	providers  map[Contract]string // contract → the module providing it
	cancellers []string            // modules told of cancellations
	needs      []need
	errs       []error
	coverage   StaffingCoverage // kept here, not on App: one contract, one file
}

type need struct {
	module   string
	contract Contract
}

type moduleSeed struct {
	module string
	fn     SeedFunc
	after  []string
}

func newContracts() contracts { return contracts{providers: map[Contract]string{}} }

// register records a module's name; two modules with one name fail start-up
// (seed order and contract errors name modules).
func (c *contracts) register(module string) {
	if slices.Contains(c.modules, module) {
		c.errs = append(c.errs, fmt.Errorf("two modules are named %s", module))
		return
	}
	c.modules = append(c.modules, module)
}

// check reports every contract provided twice or needed without a provider,
// and orders seeds so that each module's seeds run after those it needs.
func (c *contracts) check(seeds []moduleSeed) ([]moduleSeed, error) {
	errs := slices.Clone(c.errs)
	for _, n := range c.needs {
		if _, ok := c.providers[n.contract]; !ok {
			errs = append(errs, fmt.Errorf("module %s needs the %s, which no module provides", n.module, n.contract))
		}
	}
	ordered, err := orderSeeds(c.modules, seeds)
	if err != nil {
		errs = append(errs, err)
	}
	return ordered, errors.Join(errs...)
}

// orderSeeds returns seeds so that every module's come after those of the
// modules it names, keeping registration order otherwise. A named module
// that is not registered or seeds nothing, or a cycle, is an error.
func orderSeeds(modules []string, seeds []moduleSeed) ([]moduleSeed, error) {
	seeders := map[string]bool{}
	for _, s := range seeds {
		seeders[s.module] = true
	}
	var errs []error
	deps := map[string][]string{}
	for _, s := range seeds {
		for _, d := range s.after {
			switch {
			case !slices.Contains(modules, d):
				errs = append(errs, fmt.Errorf("module %s seeds after module %s, which is not registered", s.module, d))
			case !seeders[d]:
				errs = append(errs, fmt.Errorf("module %s seeds after module %s, which seeds nothing", s.module, d))
			case !slices.Contains(deps[s.module], d):
				deps[s.module] = append(deps[s.module], d)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Kahn's algorithm over modules, taking the first ready module in
	// registration order each round, so independent seeds keep their order.
	var order []string
	done := map[string]bool{}
	pending := slices.DeleteFunc(slices.Clone(modules), func(m string) bool { return !seeders[m] })
	for len(pending) > 0 {
		i := slices.IndexFunc(pending, func(m string) bool {
			return !slices.ContainsFunc(deps[m], func(d string) bool { return !done[d] })
		})
		if i < 0 {
			return nil, fmt.Errorf("seed order has a cycle among modules %s", strings.Join(pending, ", "))
		}
		done[pending[i]] = true
		order = append(order, pending[i])
		pending = slices.Delete(pending, i, i+1)
	}
	out := make([]moduleSeed, 0, len(seeds))
	for _, m := range order {
		for _, s := range seeds {
			if s.module == m {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// LabourCostsContract is the name of the LabourCosts contract.
const LabourCostsContract Contract = "labour costs"

// LabourCost is what the staff of an event cost in one currency: worked
// minutes from their timesheets (each span rounded as the provider says),
// at the hourly rate of each one's role, in minor units.
type LabourCost struct {
	Currency    string `json:"currency"`
	AmountMinor int64  `json:"amount_minor"`
	Minutes     int    `json:"minutes"`
	People      int    `json:"people"`
	// Open counts people checked in and not out yet: their time is not in
	// the figure until they check out.
	Open int `json:"open"`
}

// LabourCosts is provided by the module that keeps timesheets (staffing),
// so a settlement can count labour as an expense without its tables.
type LabourCosts interface {
	// EventLabourCost answers the event's labour cost per currency (none
	// when nobody worked it).
	EventLabourCost(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) ([]LabourCost, error)
}

// ProvideLabourCosts makes this module the labour costs of the core. Only
// one module may: a second fails start-up.
func (r *Registrar) ProvideLabourCosts(l LabourCosts) {
	if r.provide(LabourCostsContract) {
		r.app.labour = l
	}
}

// LabourCosts returns the labour costs (nil when no module provides them;
// a module that declared Needs(LabourCostsContract) never sees nil).
func (c *Core) LabourCosts() LabourCosts { return c.a.labour }
