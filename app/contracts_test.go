package app_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/tenants"
)

// contractProbe is a module that only declares contracts and seeds.
type contractProbe struct {
	name string
	reg  func(r *app.Registrar)
}

func (p contractProbe) Name() string { return p.name }

func (p contractProbe) Register(r *app.Registrar) error {
	p.reg(r)
	return nil
}

type noVenues struct{}

func (noVenues) VenueExists(context.Context, tenants.Tenant, uuid.UUID) (bool, error) {
	return false, nil
}

type noEvents struct{}

func (noEvents) Event(context.Context, tenants.Tenant, uuid.UUID) (app.EventInfo, error) {
	return app.EventInfo{}, app.NotFound("event")
}

func (noEvents) Events(context.Context, tenants.Tenant, app.EventFilter) ([]app.EventInfo, error) {
	return nil, nil
}

type noCancellations struct{}

func (noCancellations) CancellationImpact(context.Context, tenants.Tenant, []uuid.UUID) (map[uuid.UUID]app.CancellationImpact, error) {
	return nil, nil
}

func (noCancellations) EventCancelled(*gorm.DB, tenants.Tenant, uuid.UUID) error { return nil }

func (noCancellations) StartCancellation(context.Context, tenants.Tenant, uuid.UUID) {}

type noAttendance struct{}

func (noAttendance) Attendance(context.Context, tenants.Tenant, uuid.UUID) (app.EventAttendance, error) {
	return app.EventAttendance{}, nil
}

func noSeed(context.Context, tenants.Tenant, *app.Seeding) error { return nil }

// startModules starts an App with the given modules and returns its start-up
// error (nil: it started, and is closed again).
func startModules(t *testing.T, modules ...app.Module) error {
	t.Helper()
	a, err := app.New(context.Background(), apptest.Config(dbURL),
		app.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), DBMaxConns: 2}, modules...)
	if err == nil {
		a.Close()
	}
	return err
}

func TestContractsCheckedAtStartUp(t *testing.T) {
	mod := func(name string, reg func(r *app.Registrar)) app.Module { return contractProbe{name: name, reg: reg} }
	events := func(r *app.Registrar) { r.ProvideEvents(noEvents{}) }
	needsEvents := func(r *app.Registrar) { r.Needs(app.EventDirectoryContract) }
	cases := []struct {
		name    string
		modules []app.Module
		want    []string // parts of the start-up error; none: it starts
	}{
		{"one provider, needed by an earlier module", []app.Module{mod("seller", needsEvents), mod("calendar", events)}, nil},
		{"events provided twice", []app.Module{mod("a", events), mod("b", events)},
			[]string{"module b provides the event directory, already provided by module a"}},
		{"venues provided twice", []app.Module{mod("a", func(r *app.Registrar) { r.ProvideVenues(noVenues{}); r.ProvideVenues(noVenues{}) })},
			[]string{"module a provides the venue directory, already provided by module a"}},
		{"cancellations provided twice by one module", []app.Module{mod("a", func(r *app.Registrar) {
			r.ProvideCancellations(noCancellations{})
			r.ProvideCancellations(noCancellations{})
		})}, []string{"module a provides event cancellations twice"}},
		{"cancellations from two modules", []app.Module{
			mod("a", func(r *app.Registrar) { r.ProvideCancellations(noCancellations{}) }),
			mod("b", func(r *app.Registrar) {
				r.ProvideCancellations(noCancellations{})
				r.Needs(app.EventCancellationsContract)
			}),
		}, nil},
		{"needed, not provided", []app.Module{mod("seller", needsEvents), mod("staff", func(r *app.Registrar) { r.Needs(app.VenueDirectoryContract) })},
			[]string{"module seller needs the event directory, which no module provides", "module staff needs the venue directory, which no module provides"}},
		{"attendance provided twice", []app.Module{
			mod("a", func(r *app.Registrar) { r.ProvideAttendance(noAttendance{}) }),
			mod("b", func(r *app.Registrar) { r.ProvideAttendance(noAttendance{}) }),
		}, []string{"module b provides the attendance, already provided by module a"}},
		{"attendance needed, not provided", []app.Module{mod("ops", func(r *app.Registrar) { r.Needs(app.AttendanceContract) })},
			[]string{"module ops needs the attendance, which no module provides"}},
		{"two modules with one name", []app.Module{mod("a", func(*app.Registrar) {}), mod("a", func(*app.Registrar) {})},
			[]string{"two modules are named a"}},
		{"seeds after a module not registered", []app.Module{mod("a", func(r *app.Registrar) { r.Seed(noSeed, "calendar") })},
			[]string{"module a seeds after module calendar, which is not registered"}},
		{"seeds after a module that seeds nothing", []app.Module{mod("calendar", func(*app.Registrar) {}), mod("a", func(r *app.Registrar) { r.Seed(noSeed, "calendar") })},
			[]string{"module a seeds after module calendar, which seeds nothing"}},
		{"seed cycle", []app.Module{
			mod("a", func(r *app.Registrar) { r.Seed(noSeed, "c") }),
			mod("b", func(r *app.Registrar) { r.Seed(noSeed) }),
			mod("c", func(r *app.Registrar) { r.Seed(noSeed, "a") }),
		}, []string{"seed order has a cycle among modules a, c"}},
		{"seeds after a later module", []app.Module{
			mod("a", func(r *app.Registrar) { r.Seed(noSeed, "b") }),
			mod("b", func(r *app.Registrar) { r.Seed(noSeed) }),
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := startModules(t, c.modules...)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("start-up failed: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("started; want an error saying %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
