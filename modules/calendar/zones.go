package calendar

import (
	"marquee/app"
	"strings"
	"time"
)

// zoneChoices are the timezones the venue form offers, grouped by region:
// where concert venues are, by their IANA names (the API takes any IANA
// name; these are what a person picks from).
var zoneChoices = []string{
	"America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
	"America/Anchorage", "Pacific/Honolulu", "America/Toronto", "America/Vancouver", "America/Mexico_City",
	"America/Bogota", "America/Lima", "America/Santiago", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
	"Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Madrid", "Europe/Paris", "Europe/Brussels",
	"Europe/Amsterdam", "Europe/Berlin", "Europe/Zurich", "Europe/Vienna", "Europe/Rome", "Europe/Prague",
	"Europe/Copenhagen", "Europe/Oslo", "Europe/Stockholm", "Europe/Helsinki", "Europe/Warsaw", "Europe/Budapest",
	"Europe/Athens", "Europe/Istanbul", "Europe/Kyiv", "Africa/Cairo", "Africa/Lagos", "Africa/Nairobi",
	"Africa/Johannesburg", "Asia/Dubai", "Asia/Tel_Aviv", "Asia/Kolkata", "Asia/Bangkok", "Asia/Singapore",
	"Asia/Hong_Kong", "Asia/Shanghai", "Asia/Taipei", "Asia/Seoul", "Asia/Tokyo", "Australia/Perth",
	"Australia/Adelaide", "Australia/Brisbane", "Australia/Sydney", "Australia/Melbourne", "Pacific/Auckland", "UTC",
}

type zoneChoice struct {
	Name, Label string
}

// zoneOptions lists the choices with their current UTC offset, keeping
// current (a venue's own zone) in the list even when it is not a usual one.
func zoneOptions(current string, now time.Time) []zoneChoice {
	names := zoneChoices
	found := current == ""
	for _, n := range names {
		found = found || n == current
	}
	if !found {
		if _, err := LoadTimezone(current); err == nil {
			names = append([]string{current}, names...)
		}
	}
	out := make([]zoneChoice, 0, len(names))
	for _, n := range names {
		loc, err := app.Timezone(n)
		if err != nil {
			continue
		}
		out = append(out, zoneChoice{Name: n, Label: strings.ReplaceAll(n, "_", " ") + " (UTC" + now.In(loc).Format("-07:00") + ")"})
	}
	return out
}
