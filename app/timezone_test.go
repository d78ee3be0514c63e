package app_test

import (
	"testing"

	"marquee/app"
)

func TestTimezoneLoadsEachZoneOnce(t *testing.T) {
	a, err := app.Timezone("Europe/Berlin")
	if err != nil || a.String() != "Europe/Berlin" {
		t.Fatalf("Europe/Berlin: %v, %v", a, err)
	}
	if b, _ := app.Timezone("Europe/Berlin"); b != a {
		t.Fatal("a second load read the zone again")
	}
	if _, err := app.Timezone("Mars/Olympus_Mons"); err == nil {
		t.Fatal("an unknown zone loaded")
	}
}
