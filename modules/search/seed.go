package search

import (
	"context"
	"fmt"

	"marquee/app"
	"marquee/tenants"
)

// demoCopy gives the demo's acts an artist line and a description, so the
// storefront search has words to find (accents and all).
var demoCopy = []Listing{
	{Artist: "Beyoncé tribute band Halo", Description: "A night of anthems, choreography and a full brass section. Doors open an hour before the show."},
	{Artist: "Sigur Rós", Description: "Icelandic post-rock: slow-building, luminous songs sung in Hopelandic. Standing and seated areas."},
	{Artist: "Motörhead tribute", Description: "Loud, fast rock and roll. Earplugs recommended; the bar stays open throughout."},
	{Artist: "Café Tacvba", Description: "Mexican rock legends on tour: ska, punk and folk, sung along by the whole room."},
	{Artist: "Metallica cover night", Description: "Three local bands play the Black Album and the hits. Mosh pit on the floor."},
	{Artist: "Stand-up showcase", Description: "Five comedians, one host, and new material tested live. Late show, 18+."},
}

// seed writes storefront copy for the demo's on-sale events and builds the
// documents and the trending list from the calendar's and the inventory's
// demo data.
func (m *Module) seed(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
	evs, err := m.app.Events().Events(ctx, t, app.EventFilter{Statuses: public, Limit: 200})
	if err != nil {
		return err
	}
	for i, ev := range evs {
		l := demoCopy[i%len(demoCopy)]
		if _, err := m.svc.SetListing(ctx, t, ev.ID, l); err != nil {
			return fmt.Errorf("search demo listing %s: %w", ev.Title, err)
		}
	}
	if _, err := m.svc.Rebuild(ctx, t); err != nil {
		return err
	}
	return m.svc.RebuildTrending(ctx, t)
}
