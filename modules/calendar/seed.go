package calendar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/policies"
	"marquee/tenants"
)

// DemoManagerEmail is the acme demo's venue manager of Downtown Hall only.
const DemoManagerEmail = "manager.downtown@acme.test"

type demoStage struct {
	name, kind string
	capacity   int
}

type demoVenue struct {
	name, address, tz string
	lat, lng          float64
	capacity          int
	stages            []demoStage
	acts              []string
}

func demoVenues(t tenants.Tenant) []demoVenue {
	switch t.Slug {
	case "acme":
		return []demoVenue{
			{"Downtown Hall", "120 Bowery, New York, NY", "America/New_York", 40.7209, -73.9930, 2400,
				[]demoStage{{"Main Stage", "main", 1800}, {"Club Room", "club", 400}, {"Rooftop", "outdoor", 200}},
				[]string{"The Paper Lanterns", "Midnight Arcade", "Velvet Static", "Brass Tide", "Nova Lights", "Hollow Pines", "The Kettle Drums", "Saint Juniper"}},
			{"Riverside Ballroom", "2 Wharf Road, London", "Europe/London", 51.5055, -0.0754, 1500,
				[]demoStage{{"Ballroom", "ballroom", 1200}, {"Lounge", "club", 250}},
				[]string{"Echo Parade", "Lumen Choir", "The Night Tram", "Fable & Fuse", "Copper Kites", "Low Orbit"}},
			{"Sunset Pavilion", "8800 Sunset Blvd, Los Angeles, CA", "America/Los_Angeles", 34.0900, -118.3850, 5000,
				[]demoStage{{"Amphitheatre", "outdoor", 5000}},
				[]string{"Desert Bloom", "Pacific Static", "The Long Weekend", "Golden Hour Club"}},
		}
	case "globex":
		return []demoVenue{
			{"Globex Grand Theatre", "Friedrichstraße 101, Berlin", "Europe/Berlin", 52.5200, 13.3880, 1800,
				[]demoStage{{"Grand Hall", "theatre", 1400}, {"Studio", "club", 300}},
				[]string{"Kraftwerk Tribute", "Die Nachtfalter", "Spree Quartet", "Neon Baroque", "Tempelhof Sound"}},
			{"Globex Dome", "1-3-61 Koraku, Tokyo", "Asia/Tokyo", 35.7056, 139.7519, 12000,
				[]demoStage{{"Arena", "arena", 12000}},
				[]string{"Sakura Circuit", "Tokyo Drift Orchestra", "Midnight Ramen", "Shibuya Lights"}},
		}
	}
	return []demoVenue{
		{t.Name + " Main Venue", "1 Demo Street", "Europe/London", 51.5072, -0.1276, 1000,
			[]demoStage{{"Main Room", "main", 800}, {"Bar Stage", "club", 150}},
			[]string{"House Band", "Open Mic Night", "Jazz Trio", "Indie Showcase"}},
	}
}

// seed fills a fresh demo tenant: venues and stages, a few weeks of events
// around now (some exclusive), ranked holds, and for acme a venue manager of
// Downtown Hall only.
func (m *Module) seed(ctx context.Context, t tenants.Tenant, s *app.Seeding) error {
	now := time.Now()
	for vi, dv := range demoVenues(t) {
		lat, lng, capacity := dv.lat, dv.lng, dv.capacity
		name, address, tz := dv.name, dv.address, dv.tz
		v, err := m.svc.CreateVenue(ctx, t, VenueInput{Name: &name, Address: &address, Timezone: &tz, Latitude: &lat, Longitude: &lng, Capacity: &capacity})
		if err != nil {
			return fmt.Errorf("venue %s: %w", dv.name, err)
		}
		var stages []Stage
		for _, ds := range dv.stages {
			sn, sk, sc := ds.name, ds.kind, ds.capacity
			st, err := m.svc.CreateStage(ctx, t, v.ID, StageInput{Name: &sn, Kind: &sk, Capacity: &sc})
			if err != nil {
				return fmt.Errorf("stage %s: %w", ds.name, err)
			}
			stages = append(stages, st)
		}
		if err := m.seedSchedule(ctx, t, v, stages, dv.acts, vi, now); err != nil {
			return err
		}
		if t.Slug == "acme" && dv.name == "Downtown Hall" {
			if err := m.seedManager(ctx, s, v.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Module) seedSchedule(ctx context.Context, t tenants.Tenant, v Venue, stages []Stage, acts []string, vi int, now time.Time) error {
	loc := v.Location()
	today := startOfDay(now, loc)
	at := func(day, hour, minute int) time.Time {
		return time.Date(today.Year(), today.Month(), today.Day()+day, hour, minute, 0, 0, loc)
	}
	var lastOnSale *EventView // the latest show on sale: its on-sale is scheduled, with a presale on now
	book := func(in EventInput, final Status) error {
		in.Promoter = demoPromoters[len(in.Title)%len(demoPromoters)]
		e, _, err := m.svc.CreateEvent(ctx, t, v.ID, in, nil)
		var ae *app.Error
		if errors.As(err, &ae) && ae.Code == "schedule_conflict" {
			return nil // the demo pattern may overlap an exclusive booking: skip
		}
		if err != nil {
			return fmt.Errorf("event %s: %w", in.Title, err)
		}
		if in.Status == StatusOnSale && final == "" {
			lastOnSale = &e
		}
		if final != "" && final != in.Status {
			if _, err := m.svc.UpdateEvent(ctx, t, v.ID, e.ID, EventPatch{Status: &final}); err != nil {
				return fmt.Errorf("event %s to %s: %w", in.Title, final, err)
			}
		}
		return nil
	}
	// Whole-venue bookings first; stage shows on those evenings are skipped.
	if len(stages) > 1 {
		if err := book(EventInput{Exclusive: true, Title: "Private hire: Annual Gala", Category: "private_hire", Status: StatusConfirmed,
			StartsAt: at(5+vi, 18, 0).UTC(), EndsAt: at(5+vi, 23, 30).UTC(), SetupMinutes: 240, TeardownMinutes: 120}, ""); err != nil {
			return err
		}
	}
	n := 0
	challenged := false
	for day := -14; day <= 28; day++ {
		for si, st := range stages {
			stage := st.ID
			switch ((day+si*2+vi)%3 + 3) % 3 {
			case 0: // a show
				n++
				start := at(day, 19+si, 30*(n%2))
				in := EventInput{StageID: &stage, Title: acts[n%len(acts)], Category: []string{"concert", "club_night", "comedy"}[si%3],
					StartsAt: start.UTC(), EndsAt: start.Add(time.Duration(150+30*(n%3)) * time.Minute).UTC(),
					SetupMinutes: 90 + 30*(si%2), TeardownMinutes: 60}
				var final Status
				switch {
				case day < 0:
					in.Status, final = StatusConfirmed, StatusCompleted
				case day < 7 && n%4 == 0:
					in.Status, final = StatusOnSale, StatusSoldOut
				case day < 14:
					in.Status = StatusOnSale
				case n%3 == 0:
					in.Status = StatusDraft
				default:
					in.Status = StatusConfirmed
				}
				if err := book(in, final); err != nil {
					return err
				}
			case 1: // ranked holds on a free evening, a week or more out
				if day < 7 || (day+si)%4 != 0 {
					continue
				}
				for rank := 0; rank < 1+(day+si)%3+1; rank++ {
					start := at(day, 20, 0)
					in := HoldInput{StageID: st.ID, Title: acts[(n+rank+3)%len(acts)], Category: "concert",
						StartsAt: start.UTC(), EndsAt: start.Add(3 * time.Hour).UTC(), SetupMinutes: 120, TeardownMinutes: 60,
						Promoter: demoPromoters[(n+rank)%len(demoPromoters)]}
					h, _, err := m.svc.CreateHold(ctx, t, v.ID, in, nil)
					if err != nil {
						return fmt.Errorf("hold: %w", err)
					}
					// The first 2nd hold of each venue has challenged the 1st,
					// which has until its deadline to confirm or release.
					if h.Rank == 2 && !challenged {
						if _, err := m.svc.ChallengeHold(ctx, t, v.ID, h.ID, 0); err != nil {
							return fmt.Errorf("challenge: %w", err)
						}
						challenged = true
					}
				}
			}
		}
	}
	if lastOnSale != nil {
		// On sale to the public in two days; the fan-club presale runs now.
		onSale := now.Add(48 * time.Hour).Truncate(time.Hour).UTC()
		from, to, code := now.Add(-2*time.Hour).Truncate(time.Hour).UTC(), onSale.Add(-24*time.Hour), DemoPresaleCode
		sched := SaleSchedule{OnSaleAt: &onSale, PresaleStartsAt: &from, PresaleEndsAt: &to, PresaleCode: &code}
		if _, err := m.svc.UpdateEvent(ctx, t, v.ID, lastOnSale.ID, EventPatch{Schedule: &sched}); err != nil {
			return fmt.Errorf("on-sale schedule of %s: %w", lastOnSale.Title, err)
		}
	}
	return nil
}

// DemoPresaleCode is the code of the demo's presales (one show per venue).
const DemoPresaleCode = "FANCLUB"

// demoPromoters bill the demo's shows ("" : the venue's own).
var demoPromoters = []string{"Live Nation", "AEG Presents", "", "Bowery Presents", "Goldenvoice"}

func (m *Module) seedManager(ctx context.Context, s *app.Seeding, venue uuid.UUID) error {
	u, err := s.CreateUser(ctx, DemoManagerEmail, "Downtown Hall Manager", app.DemoPassword)
	var ae *app.Error
	if errors.As(err, &ae) && ae.Code == "email_taken" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo manager: %w", err)
	}
	return s.Assign(policies.Assignment{UserID: u.ID.String(), Role: policies.RoleVenueManager, Venue: venue.String()})
}
