package ops

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// Zone is an area of an event's venue with its licensed capacity.
type Zone struct {
	ID            uuid.UUID `json:"id"`
	EventID       uuid.UUID `json:"event_id"`
	Name          string    `json:"name"`
	DoorZone      string    `json:"door_zone"`
	Capacity      int       `json:"capacity"`
	AlertPercents []int     `json:"alert_percents"`
	Source        string    `json:"source"`
}

// ZoneInput sets a zone (by name).
type ZoneInput struct {
	Name string `json:"name"`
	// DoorZone is the door's zone (inventory's zone name) whose scans count
	// here; "" means the zone's own name, "-" none.
	DoorZone string `json:"door_zone"`
	Capacity int    `json:"capacity"`
	// AlertPercents of the capacity that raise an alert when reached
	// (default 90 and 100).
	AlertPercents []int `json:"alert_percents"`
	// Source the dashboard trusts: auto (default), door, turnstile or manual.
	Source string `json:"source"`
}

// SourceCount is what one source says of a zone.
type SourceCount struct {
	Source string     `json:"source"` // door, turnstile or manual
	Inside int        `json:"inside"`
	AsOf   *time.Time `json:"as_of,omitempty"`
	// Devices counts the turnstiles behind a turnstile count.
	Devices int `json:"devices,omitempty"`
}

// ZoneOccupancy is a zone on the dashboard: the count it trusts, from which
// source, how fresh, and what every source says (to see discrepancies).
type ZoneOccupancy struct {
	ZoneID   uuid.UUID `json:"zone_id"`
	Zone     string    `json:"zone"`
	Capacity int       `json:"capacity"`
	Inside   int       `json:"inside"`
	Percent  float64   `json:"percent"`
	// Source is the source trusted ("none" before any count).
	Source     string        `json:"source"`
	AsOf       *time.Time    `json:"as_of,omitempty"`
	AgeSeconds *int          `json:"age_seconds,omitempty"`
	Stale      bool          `json:"stale"`
	Alerts     []int         `json:"alert_percents"`
	Sources    []SourceCount `json:"sources"`
}

// Reading is a turnstile or manual count pushed to a zone.
type Reading struct {
	Zone   string `json:"zone"`
	Source string `json:"source"`
	// Direction of a turnstile counter: in (default) counts people
	// entering, out people leaving (its count or delta is subtracted).
	Direction string     `json:"direction,omitempty"`
	Count     *int       `json:"count,omitempty"`
	Delta     *int       `json:"delta,omitempty"`
	At        *time.Time `json:"at,omitempty"`
}

// ReadingResult is what a pushed reading did.
type ReadingResult struct {
	// Duplicate: the device reported this instant already; nothing changed.
	Duplicate bool          `json:"duplicate"`
	Zone      ZoneOccupancy `json:"zone"`
	Alerts    []Alert       `json:"alerts"`
}

// Alert is a zone reaching a share of its capacity, once per crossing.
type Alert struct {
	ID       uuid.UUID `json:"id"`
	EventID  uuid.UUID `json:"event_id"`
	ZoneID   uuid.UUID `json:"zone_id"`
	Zone     string    `json:"zone"`
	Percent  int       `json:"percent"`
	Crossing int       `json:"crossing"`
	Inside   int       `json:"inside"`
	Capacity int       `json:"capacity"`
	Source   string    `json:"source"`
	RaisedAt time.Time `json:"raised_at"`
}

var turnstileSource = regexp.MustCompile(`^turnstile:[A-Za-z0-9._-]{1,64}$`)

const (
	maxZones    = 50
	maxCapacity = 1_000_000
	maxDelta    = 100_000
	futureSkew  = 2 * time.Minute
	pastLimit   = 48 * time.Hour
)

func validZoneName(s string) bool {
	return s != "" && len(s) <= 80 && strings.TrimSpace(s) == s
}

// validate checks zone inputs before anything is written.
func validateZones(in []ZoneInput) error {
	if len(in) == 0 || len(in) > maxZones {
		return app.InvalidField("invalid_zones", "zones", "give 1 to %d zones", maxZones)
	}
	seen := map[string]bool{}
	for i := range in {
		z := &in[i]
		f := func(name string) string { return fmt.Sprintf("zones[%d].%s", i, name) }
		if !validZoneName(z.Name) || seen[z.Name] {
			return app.InvalidField("invalid_zones", f("name"), "a zone name is 1 to 80 characters, without outer spaces, and unique")
		}
		seen[z.Name] = true
		if z.Capacity < 1 || z.Capacity > maxCapacity {
			return app.InvalidField("invalid_capacity", f("capacity"), "capacity is 1 to %d", maxCapacity)
		}
		if len(z.AlertPercents) == 0 {
			z.AlertPercents = []int{90, 100}
		}
		if len(z.AlertPercents) > 5 {
			return app.InvalidField("invalid_zones", f("alert_percents"), "at most 5 alert thresholds")
		}
		for _, p := range z.AlertPercents {
			if p < 1 || p > 200 {
				return app.InvalidField("invalid_zones", f("alert_percents"), "an alert threshold is 1 to 200 percent")
			}
		}
		slices.Sort(z.AlertPercents)
		z.AlertPercents = slices.Compact(z.AlertPercents)
		switch z.DoorZone {
		case "":
			z.DoorZone = z.Name
		case "-":
			z.DoorZone = ""
		default:
			if !validZoneName(z.DoorZone) {
				return app.InvalidField("invalid_zones", f("door_zone"), "door_zone is 1 to 80 characters")
			}
		}
		if z.Source == "" {
			z.Source = "auto"
		}
		if !slices.Contains([]string{"auto", "door", "turnstile", "manual"}, z.Source) {
			return app.InvalidField("invalid_zones", f("source"), "source is auto, door, turnstile or manual")
		}
	}
	return nil
}

// SetZones creates or changes an event's zones by name (zones not named stay).
func (s *Service) SetZones(ctx context.Context, t tenants.Tenant, ev app.EventInfo, in []ZoneInput) ([]Zone, error) {
	if err := validateZones(in); err != nil {
		return nil, err
	}
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		for _, z := range in {
			err := tx.Exec(`INSERT INTO ops_zones (id, event_id, venue_id, name, door_zone, capacity, alert_percents, source)
				VALUES (?, ?, ?, ?, ?, ?, ?::integer[], ?)
				ON CONFLICT (event_id, name) DO UPDATE SET door_zone = EXCLUDED.door_zone, capacity = EXCLUDED.capacity,
					alert_percents = EXCLUDED.alert_percents, source = EXCLUDED.source`,
				newID(), ev.ID, ev.VenueID, z.Name, z.DoorZone, z.Capacity, intArray(z.AlertPercents), z.Source).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Zones(ctx, t, ev.ID)
}

type zoneRow struct {
	ID            uuid.UUID
	EventID       uuid.UUID
	Name          string
	DoorZone      string
	Capacity      int
	AlertPercents string
	Source        string
}

func (r zoneRow) zone() Zone {
	z := Zone{ID: r.ID, EventID: r.EventID, Name: r.Name, DoorZone: r.DoorZone, Capacity: r.Capacity, Source: r.Source, AlertPercents: []int{}}
	for _, p := range strings.Split(r.AlertPercents, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			z.AlertPercents = append(z.AlertPercents, n)
		}
	}
	return z
}

func zonesIn(tx *gorm.DB, event uuid.UUID) ([]Zone, error) {
	var rows []zoneRow
	if err := tx.Raw(`SELECT id, event_id, name, door_zone, capacity, array_to_string(alert_percents, ',') AS alert_percents, source FROM ops_zones WHERE event_id = ? ORDER BY name`, event).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]Zone, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.zone())
	}
	return out, nil
}

// Zones lists an event's zones by name.
func (s *Service) Zones(ctx context.Context, t tenants.Tenant, event uuid.UUID) ([]Zone, error) {
	var out []Zone
	err := s.tx(ctx, t, func(tx *gorm.DB) (err error) {
		out, err = zonesIn(tx, event)
		return err
	})
	return out, err
}

// validateReading checks a reading against the clock before anything is
// written; it returns the reading's instant.
func validateReading(r Reading, now time.Time) (time.Time, error) {
	if !validZoneName(r.Zone) {
		return time.Time{}, app.InvalidField("unknown_zone", "zone", "zone names no zone of this event")
	}
	if r.Source != "manual" && !turnstileSource.MatchString(r.Source) {
		return time.Time{}, app.InvalidField("invalid_reading", "source", `source is "manual" or "turnstile:<id>" (id: 1 to 64 letters, digits, . _ -)`)
	}
	switch {
	case r.Direction != "" && r.Direction != "in" && r.Direction != "out":
		return time.Time{}, app.InvalidField("invalid_reading", "direction", "direction is in or out")
	case r.Direction == "out" && r.Source == "manual":
		return time.Time{}, app.InvalidField("invalid_reading", "direction", "a manual reading is a head count, not an exit counter")
	}
	if (r.Count == nil) == (r.Delta == nil) {
		return time.Time{}, app.InvalidField("invalid_reading", "count", "give exactly one of count and delta")
	}
	if r.Count != nil && (*r.Count < 0 || *r.Count > maxCapacity) {
		return time.Time{}, app.InvalidField("invalid_reading", "count", "count is 0 to %d", maxCapacity)
	}
	if r.Delta != nil {
		if r.Source == "manual" {
			return time.Time{}, app.InvalidField("invalid_reading", "delta", "a manual reading is a head count (count), not a delta")
		}
		if *r.Delta == 0 || *r.Delta < -maxDelta || *r.Delta > maxDelta {
			return time.Time{}, app.InvalidField("invalid_reading", "delta", "delta is a non-zero number from -%d to %d", maxDelta, maxDelta)
		}
	}
	at := now
	if r.At != nil {
		at = r.At.UTC()
	}
	if at.After(now.Add(futureSkew)) || at.Before(now.Add(-pastLimit)) {
		return time.Time{}, app.InvalidField("invalid_at", "at", "at is more than two minutes ahead of the server or more than two days behind")
	}
	return at.Truncate(time.Microsecond), nil
}

// PushReading stores a turnstile or manual reading once (a redelivery of the
// same device's instant is a duplicate), then refreshes the zone: its
// minute of history, its alerts, the dashboards.
func (s *Service) PushReading(ctx context.Context, t tenants.Tenant, ev app.EventInfo, actor *uuid.UUID, r Reading) (ReadingResult, error) {
	at, err := validateReading(r, s.app.Now())
	if err != nil {
		return ReadingResult{}, err
	}
	var res ReadingResult
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		var zones []struct{ ID uuid.UUID }
		if err := tx.Raw(`SELECT id FROM ops_zones WHERE event_id = ? AND name = ?`, ev.ID, r.Zone).Scan(&zones).Error; err != nil {
			return err
		}
		if len(zones) == 0 {
			return app.InvalidField("unknown_zone", "zone", "zone %q is not configured for this event", r.Zone)
		}
		// The unique key (zone, source, at) makes a redelivered reading a
		// no-op: a delta is never added twice.
		direction := r.Direction
		if direction == "" {
			direction = "in"
		}
		q := tx.Exec(`INSERT INTO ops_readings (zone_id, source, direction, count, delta, at, actor_id) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (zone_id, source, direction, at) DO NOTHING`, zones[0].ID, r.Source, direction, r.Count, r.Delta, at, actor)
		if q.Error != nil {
			return q.Error
		}
		res.Duplicate = q.RowsAffected == 0
		return nil
	})
	if err != nil {
		return ReadingResult{}, err
	}
	zones, alerts, err := s.Refresh(ctx, t, ev)
	if err != nil {
		return ReadingResult{}, err
	}
	for _, z := range zones {
		if z.Zone == r.Zone {
			res.Zone = z
		}
	}
	res.Alerts = app.NonNil(alerts)
	return res, nil
}

// turnstileTotals sums each zone's turnstile counters in the database. A
// counter's readings are taken in the order of the device's instants, not
// of arrival, so late readings fall into place: a cumulative count adds what
// it grew by since the count before; one below half the count before means
// the counter was reset (to zero, then counted up to it), so it adds
// itself, while one only a little lower is a device's glitch and adds
// nothing (taken for a reset, it would count the whole crowd again); the
// first adds itself (counters start at zero at doors); a delta
// adds itself. Exit counters subtract.
const turnstileTotals = `
WITH r AS (
	SELECT r.zone_id, r.source, r.direction, r.count, r.delta, r.at,
		lag(r.count) OVER (PARTITION BY r.zone_id, r.source, r.direction, (r.count IS NULL) ORDER BY r.at, r.id) AS prev
	FROM ops_readings r JOIN ops_zones z ON z.id = r.zone_id
	WHERE z.event_id = ? AND r.source <> 'manual')
SELECT zone_id,
	sum(CASE WHEN delta IS NOT NULL THEN delta WHEN prev IS NULL OR count * 2 < prev THEN count WHEN count < prev THEN 0 ELSE count - prev END
		* CASE direction WHEN 'out' THEN -1 ELSE 1 END) AS inside,
	max(at) AS last_at, count(DISTINCT source) AS devices
FROM r GROUP BY zone_id`

// door reads the event's door count through the attendance contract (nil
// when no module checks tickets in).
func (s *Service) door(ctx context.Context, t tenants.Tenant, ev app.EventInfo) (*app.EventAttendance, error) {
	att := s.app.Attendance()
	if att == nil {
		return nil, nil
	}
	a, err := att.Attendance(ctx, t, ev.ID)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Occupancy computes every zone of an event from its three sources.
func (s *Service) Occupancy(ctx context.Context, t tenants.Tenant, ev app.EventInfo) ([]ZoneOccupancy, error) {
	door, err := s.door(ctx, t, ev)
	if err != nil {
		return nil, err
	}
	var out []ZoneOccupancy
	err = s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) (err error) {
		out, err = s.occupancyIn(tx, ev, door)
		return err
	})
	return out, err
}

// occupancyIn computes the zones from the readings the transaction sees and
// the door count read before it.
func (s *Service) occupancyIn(tx *gorm.DB, ev app.EventInfo, door *app.EventAttendance) ([]ZoneOccupancy, error) {
	var (
		turns []struct {
			ZoneID  uuid.UUID
			Inside  int
			LastAt  time.Time
			Devices int
		}
		manuals []struct {
			ZoneID uuid.UUID
			Count  int
			At     time.Time
		}
	)
	zones, err := zonesIn(tx, ev.ID)
	if err != nil {
		return nil, err
	}
	if err = tx.Raw(turnstileTotals, ev.ID).Scan(&turns).Error; err != nil {
		return nil, err
	}
	if err = tx.Raw(`SELECT DISTINCT ON (r.zone_id) r.zone_id, r.count, r.at FROM ops_readings r JOIN ops_zones z ON z.id = r.zone_id
		WHERE z.event_id = ? AND r.source = 'manual' ORDER BY r.zone_id, r.at DESC, r.id DESC`, ev.ID).Scan(&manuals).Error; err != nil {
		return nil, err
	}
	now := s.app.Now()
	out := make([]ZoneOccupancy, 0, len(zones))
	for _, z := range zones {
		var srcs []SourceCount
		if door != nil && z.DoorZone != "" {
			for _, dz := range door.Zones {
				if dz.Zone == z.DoorZone && dz.Admitted > 0 {
					srcs = append(srcs, SourceCount{Source: "door", Inside: dz.Inside, AsOf: dz.LastScan})
				}
			}
		}
		for _, tr := range turns {
			if tr.ZoneID == z.ID {
				at := tr.LastAt
				// exits counted before their entries cannot make a negative crowd
				srcs = append(srcs, SourceCount{Source: "turnstile", Inside: max(tr.Inside, 0), AsOf: &at, Devices: tr.Devices})
			}
		}
		for _, mr := range manuals {
			if mr.ZoneID == z.ID {
				at := mr.At
				srcs = append(srcs, SourceCount{Source: "manual", Inside: mr.Count, AsOf: &at})
			}
		}
		out = append(out, trusted(z, srcs, now, liveWindow(ev, now)))
	}
	return out, nil
}

// preference is the order in which fresh sources are trusted: the door's
// per-ticket log first (a ticket is inside at most once), then turnstiles,
// then a head count. Sources are never added together: they count the same
// people.
var preference = []string{"door", "turnstile", "manual"}

// trusted picks the count a zone shows: the pinned source if the zone names
// one, else the first fresh source by preference, else the latest one
// (flagged stale during the live night).
func trusted(z Zone, srcs []SourceCount, now time.Time, live bool) ZoneOccupancy {
	zo := ZoneOccupancy{ZoneID: z.ID, Zone: z.Name, Capacity: z.Capacity, Source: "none", Alerts: z.AlertPercents, Sources: app.NonNil(srcs)}
	fresh := func(sc SourceCount) bool { return sc.AsOf != nil && now.Sub(*sc.AsOf) <= staleAfter }
	var pick *SourceCount
	if z.Source != "auto" {
		for i := range srcs {
			if srcs[i].Source == z.Source {
				pick = &srcs[i]
			}
		}
	} else {
		for _, p := range preference {
			for i := range srcs {
				if srcs[i].Source == p && pick == nil && fresh(srcs[i]) {
					pick = &srcs[i]
				}
			}
		}
		for i := range srcs {
			if pick == nil || (!fresh(*pick) && srcs[i].AsOf != nil && (pick.AsOf == nil || srcs[i].AsOf.After(*pick.AsOf))) {
				pick = &srcs[i]
			}
		}
	}
	if pick == nil {
		zo.Stale = live
		return zo
	}
	zo.Source, zo.Inside, zo.AsOf = pick.Source, pick.Inside, pick.AsOf
	zo.Percent = math.Round(float64(zo.Inside)*1000/float64(z.Capacity)) / 10
	if pick.AsOf != nil {
		age := int(max(now.Sub(*pick.AsOf), 0) / time.Second)
		zo.AgeSeconds = &age
	}
	zo.Stale = live && !fresh(*pick)
	return zo
}

// Refresh recomputes an event's zones, records the minute of history,
// raises the alerts whose thresholds were crossed, and pushes the zones (and
// alerts) to the dashboards. Readings, the per-minute sampler and dashboard
// reads all come through here.
func (s *Service) Refresh(ctx context.Context, t tenants.Tenant, ev app.EventInfo) ([]ZoneOccupancy, []Alert, error) {
	door, err := s.door(ctx, t, ev)
	if err != nil {
		return nil, nil, err
	}
	var (
		zones  []ZoneOccupancy
		alerts []Alert
		mails  []uuid.UUID
	)
	minute := s.app.Now().UTC().Truncate(time.Minute)
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		alerts, mails = nil, nil // a retried transaction starts over
		// Refreshes of one event take turns (the zone rows' locks), and
		// each counts the readings after taking its turn: the counts the
		// alerts see follow the order the readings committed in, so a
		// refresh that counted earlier can never re-arm a threshold a later
		// count crossed (which would raise it twice).
		if err := tx.Exec(`SELECT 1 FROM ops_zones WHERE event_id = ? ORDER BY id FOR UPDATE`, ev.ID).Error; err != nil {
			return err
		}
		var err error
		if zones, err = s.occupancyIn(tx, ev, door); err != nil {
			return err
		}
		for _, z := range zones {
			if z.Source != "none" {
				// The minute keeps the last count seen in it and its peak.
				if err := tx.Exec(`INSERT INTO ops_occupancy_minutes (zone_id, event_id, minute, inside, peak, capacity, source)
					VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (zone_id, minute) DO UPDATE SET inside = EXCLUDED.inside,
						peak = GREATEST(ops_occupancy_minutes.peak, EXCLUDED.inside), capacity = EXCLUDED.capacity, source = EXCLUDED.source`,
					z.ZoneID, ev.ID, minute, z.Inside, z.Inside, z.Capacity, z.Source).Error; err != nil {
					return err
				}
			}
			a, err := s.evaluate(tx, ev, z)
			if err != nil {
				return err
			}
			for _, one := range a {
				ids, err := s.queueAlertMail(tx, t, ev, one)
				if err != nil {
					return err
				}
				mails = append(mails, ids...)
			}
			alerts = append(alerts, a...)
		}
		return nil
	})
	if err != nil || len(zones) == 0 {
		return zones, nil, err
	}
	s.app.Mail.Dispatch(ctx, t, mails...)
	s.publish(ctx, t, ev.ID, "occupancy", zones)
	for _, a := range alerts {
		s.publish(ctx, t, ev.ID, "alert", a)
	}
	return zones, alerts, nil
}

// evaluate raises a zone's alerts once per crossing. Reaching a threshold
// flips its state row from below to above with a conditional UPDATE: of any
// number of evaluators racing on the same change, exactly one sees the row
// flip and writes the alert (and the unique crossing number backs it up).
// Falling below re-arms it. The caller mails the alert in the same
// transaction (queueAlertMail).
func (s *Service) evaluate(tx *gorm.DB, ev app.EventInfo, z ZoneOccupancy) ([]Alert, error) {
	var out []Alert
	for _, p := range z.Alerts {
		threshold := int(math.Ceil(float64(z.Capacity) * float64(p) / 100))
		if z.Source == "none" || z.Inside < threshold {
			if err := tx.Exec(`UPDATE ops_alert_state SET above = false WHERE zone_id = ? AND percent = ? AND above`, z.ZoneID, p).Error; err != nil {
				return nil, err
			}
			continue
		}
		if err := tx.Exec(`INSERT INTO ops_alert_state (zone_id, percent) VALUES (?, ?) ON CONFLICT DO NOTHING`, z.ZoneID, p).Error; err != nil {
			return nil, err
		}
		var crossing []int
		if err := tx.Raw(`UPDATE ops_alert_state SET above = true, crossings = crossings + 1 WHERE zone_id = ? AND percent = ? AND NOT above RETURNING crossings`,
			z.ZoneID, p).Scan(&crossing).Error; err != nil {
			return nil, err
		}
		if len(crossing) == 0 {
			continue // raised already for this crossing
		}
		a := Alert{ID: newID(), EventID: ev.ID, ZoneID: z.ZoneID, Zone: z.Zone, Percent: p, Crossing: crossing[0], Inside: z.Inside,
			Capacity: z.Capacity, Source: z.Source, RaisedAt: s.app.Now().UTC().Truncate(time.Microsecond)}
		if err := tx.Exec(`INSERT INTO ops_alerts (id, event_id, zone_id, percent, crossing, inside, capacity, source, raised_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.EventID, a.ZoneID, a.Percent, a.Crossing, a.Inside, a.Capacity, a.Source, a.RaisedAt).Error; err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Alerts lists an event's latest alerts, newest first.
func (s *Service) Alerts(ctx context.Context, t tenants.Tenant, event uuid.UUID, limit int) ([]Alert, error) {
	var out []Alert
	err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT a.id, a.event_id, a.zone_id, z.name AS zone, a.percent, a.crossing, a.inside, a.capacity, a.source, a.raised_at
			FROM ops_alerts a JOIN ops_zones z ON z.id = a.zone_id WHERE a.event_id = ? ORDER BY a.raised_at DESC LIMIT ?`, event, limit).Scan(&out).Error
	})
	return app.NonNil(out), err
}

// intArray is a PostgreSQL array literal of ints.
func intArray(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
