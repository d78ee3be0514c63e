package catalogue

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Layout is a reserved-seating map as imported from JSON: sections of rows
// of numbered seats. A row gives either a seat count (numbered from Start,
// default 1) or explicit Numbers. Seat ids are "<section>-<row>-<number>".
//
//	{"sections":[{"name":"A","zone":"Stalls","rows":[{"label":"1","seats":20},{"label":"2","numbers":[1,2,3,5]}]}]}
type Layout struct {
	Sections []LayoutSection `json:"sections"`
}

// LayoutSection is one block of the map. X and Y place it (map units; a
// seat is 12 units wide); when absent, sections are laid out side by side.
type LayoutSection struct {
	Name string      `json:"name"`
	Zone string      `json:"zone"`
	Rows []LayoutRow `json:"rows"`
	X    *float64    `json:"x"`
	Y    *float64    `json:"y"`
	// Curve bends every row round the stage: how far the middle of a row
	// sits below its ends, in map units (0: straight rows). The rows of a
	// curved section are centred on each other.
	Curve float64 `json:"curve,omitempty"`
	// Aisles are gaps one seat wide after the n-th seat of every row,
	// counted from the left.
	Aisles []int `json:"aisles,omitempty"`
}

// LayoutRow is one row of a section.
type LayoutRow struct {
	Label   string `json:"label"`
	Seats   int    `json:"seats"`
	Start   int    `json:"start"`
	Numbers []int  `json:"numbers"`
	// Accessible lists the row's wheelchair-accessible seats by number.
	Accessible []int `json:"accessible,omitempty"`
}

var labelPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)

// Seat spacing of the generated map, in map units.
const (
	seatPitch   = 12.0
	rowPitch    = 14.0
	sectionGap  = 36.0
	sectionHead = 18.0
)

// SeatRow is one seat of the map.
type SeatRow struct {
	ID      string    `gorm:"column:id" json:"id"`
	ZoneID  uuid.UUID `gorm:"column:zone_id" json:"zone_id"`
	Section string    `gorm:"column:section" json:"section"`
	Row     string    `gorm:"column:row_label" json:"row"`
	Number  int       `gorm:"column:number" json:"number"`
	Ord     int       `gorm:"column:ord" json:"-"`
	X       float64   `gorm:"column:x" json:"x"`
	Y       float64   `gorm:"column:y" json:"y"`
	// Accessible marks a wheelchair-accessible seat.
	Accessible bool `gorm:"column:accessible" json:"accessible"`
}

func (l Layout) seats(zones map[string]*model.Zone) ([]SeatRow, error) {
	if len(l.Sections) == 0 || len(l.Sections) > 500 {
		return nil, model.Invalid("layout", "a seat map needs 1 to 500 sections")
	}
	var out []SeatRow
	seen := map[string]bool{}
	x := 0.0
	for si, sec := range l.Sections {
		if !labelPattern.MatchString(sec.Name) {
			return nil, model.Invalid("layout", "section %d: name must be 1 to 12 letters or digits", si+1)
		}
		z, ok := zones[strings.ToLower(sec.Zone)]
		if !ok || z.Kind != model.KindReserved {
			return nil, model.Invalid("layout", "section %s: zone %q is not a reserved zone of this event", sec.Name, sec.Zone)
		}
		if len(sec.Rows) == 0 || len(sec.Rows) > 500 {
			return nil, model.Invalid("layout", "section %s needs 1 to 500 rows", sec.Name)
		}
		ox, oy := x, 0.0
		if sec.X != nil {
			ox = *sec.X
		}
		if sec.Y != nil {
			oy = *sec.Y
		}
		if math.Abs(ox) > maxOffset || math.Abs(oy) > maxOffset {
			return nil, model.Invalid("layout", "section %s: x and y must be within %d map units of the origin", sec.Name, maxOffset)
		}
		if sec.Curve < 0 || sec.Curve > maxCurve {
			return nil, model.Invalid("layout", "section %s: the curve must be from 0 to %d", sec.Name, maxCurve)
		}
		if len(sec.Aisles) > 50 {
			return nil, model.Invalid("layout", "section %s: at most 50 aisles", sec.Name)
		}
		for _, a := range sec.Aisles {
			if a < 1 || a > 999 {
				return nil, model.Invalid("layout", "section %s: an aisle comes after seat 1 to 999 of a row", sec.Name)
			}
		}
		rowNums := make([][]int, len(sec.Rows))
		widest := 0
		for ri, row := range sec.Rows {
			if !labelPattern.MatchString(row.Label) {
				return nil, model.Invalid("layout", "section %s row %d: label must be 1 to 12 letters or digits", sec.Name, ri+1)
			}
			nums := row.Numbers
			if len(nums) == 0 {
				if row.Seats < 1 || row.Seats > 1000 {
					return nil, model.Invalid("layout", "section %s row %s: give 1 to 1000 seats or a list of numbers", sec.Name, row.Label)
				}
				start := row.Start
				if start == 0 {
					start = 1
				}
				for n := 0; n < row.Seats; n++ {
					nums = append(nums, start+n)
				}
			} else if row.Seats != 0 && row.Seats != len(nums) {
				return nil, model.Invalid("layout", "section %s row %s: seats and numbers disagree", sec.Name, row.Label)
			}
			if len(nums) > 1000 {
				return nil, model.Invalid("layout", "section %s row %s: at most 1000 seats a row", sec.Name, row.Label)
			}
			for _, a := range row.Accessible {
				if !slices.Contains(nums, a) {
					return nil, model.Invalid("layout", "section %s row %s: accessible seat %d is not in the row", sec.Name, row.Label, a)
				}
			}
			rowNums[ri] = nums
			widest = max(widest, slotsOf(len(nums), sec.Aisles))
		}
		for ri, row := range sec.Rows {
			nums := rowNums[ri]
			// A curved section centres its rows; a straight one starts
			// them all at its left edge.
			offset := 0.0
			if sec.Curve > 0 {
				offset = float64(widest-slotsOf(len(nums), sec.Aisles)) / 2
			}
			for i, n := range nums {
				if n < 0 || n > 99999 {
					return nil, model.Invalid("layout", "section %s row %s: seat numbers must be from 0 to 99999", sec.Name, row.Label)
				}
				id := fmt.Sprintf("%s-%s-%d", sec.Name, row.Label, n)
				if seen[id] {
					return nil, model.Invalid("layout", "seat %s appears twice", id)
				}
				seen[id] = true
				slot := offset + float64(i+aislesBefore(i, sec.Aisles))
				out = append(out, SeatRow{ID: id, ZoneID: z.ID, Section: sec.Name, Row: row.Label, Number: n, Ord: len(out),
					X: ox + slot*seatPitch, Y: oy + sectionHead + float64(ri)*rowPitch + bend(sec.Curve, slot, widest),
					Accessible: slices.Contains(row.Accessible, n)})
				if len(out) > model.MaxSeatsPerLayout {
					return nil, model.Invalid("layout", "a seat map holds at most %d seats", model.MaxSeatsPerLayout)
				}
			}
		}
		x = ox + float64(widest)*seatPitch + sectionGap
	}
	return out, nil
}

// maxCurve bounds a section's curve (map units).
const maxCurve = 400

// maxOffset bounds where a section may be placed (map units; a seat is 12).
const maxOffset = 100000

// aislesBefore counts the aisles left of the seat at index i of a row
// (an aisle after the a-th seat comes before index a).
func aislesBefore(i int, aisles []int) int {
	n := 0
	for _, a := range aisles {
		if a <= i {
			n++
		}
	}
	return n
}

// slotsOf is how many seat widths a row of n seats takes with its aisles.
func slotsOf(n int, aisles []int) int {
	if n == 0 {
		return 0
	}
	return n + aislesBefore(n-1, aisles)
}

// bend is how far below its row's line a seat at a slot of a curved
// section sits: the row is a parabola through the ends of the widest row,
// its middle curve units lower (nearer the back, the ends turned towards
// the stage above).
func bend(curve, slot float64, widest int) float64 {
	if curve == 0 || widest < 2 {
		return 0
	}
	half := float64(widest-1) / 2
	t := (slot - half) / half
	return curve * (1 - t*t)
}

// insertSeats writes the seat map in batches (a bounded number of
// parameters per statement).
func insertSeats(tx *gorm.DB, eventID uuid.UUID, seats []SeatRow) error {
	const batch = 2000
	for start := 0; start < len(seats); start += batch {
		end := min(start+batch, len(seats))
		var sb strings.Builder
		sb.WriteString(`INSERT INTO inv_seats (event_id, id, zone_id, section, row_label, number, ord, x, y, accessible) VALUES `)
		args := make([]any, 0, (end-start)*10)
		for i, s := range seats[start:end] {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, eventID, s.ID, s.ZoneID, s.Section, s.Row, s.Number, s.Ord, s.X, s.Y, s.Accessible)
		}
		if err := tx.Exec(sb.String(), args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// SeatMap is the static layout of an event's seats, for drawing.
type SeatMap struct {
	Zones  []model.Zone `json:"zones"`
	Seats  []SeatRow    `json:"seats"`
	Width  float64      `json:"width"`
	Height float64      `json:"height"`
}

// SeatMap reads the layout of an event.
func (s *Service) SeatMap(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (SeatMap, error) {
	var m SeatMap
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		if _, err := LoadSettings(tx, eventID); err != nil {
			return err
		}
		var err error
		if m.Zones, err = LoadZones(tx, eventID); err != nil {
			return err
		}
		return tx.Raw(`SELECT id, zone_id, section, row_label, number, ord, x, y, accessible FROM inv_seats WHERE event_id = ? ORDER BY ord`, eventID).Scan(&m.Seats).Error
	})
	for _, st := range m.Seats {
		m.Width = max(m.Width, st.X+seatPitch)
		m.Height = max(m.Height, st.Y+rowPitch)
	}
	if m.Seats == nil {
		m.Seats = []SeatRow{}
	}
	return m, err
}

// BuiltLayout is the event's seat map as a Layout: as it was built when it
// was kept (curves, aisles), otherwise read back from its seats (straight
// rows in map order). Nil when the event has no seats.
func (s *Service) BuiltLayout(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (*Layout, error) {
	var out *Layout
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var kept []struct {
			Layout *string `gorm:"column:layout"`
		}
		if err := tx.Raw(`SELECT layout::text AS layout FROM inv_events WHERE event_id = ?`, eventID).Scan(&kept).Error; err != nil {
			return err
		}
		if len(kept) == 0 {
			return model.ErrNoInventory()
		}
		var seats []struct {
			SeatRow
			Zone string `gorm:"column:zone"`
		}
		if err := tx.Raw(`SELECT s.id, s.section, s.row_label, s.number, s.accessible, z.name AS zone
			FROM inv_seats s JOIN inv_zones z ON z.id = s.zone_id WHERE s.event_id = ? ORDER BY s.ord`, eventID).Scan(&seats).Error; err != nil {
			return err
		}
		if kept[0].Layout != nil {
			var l Layout
			if err := json.Unmarshal([]byte(*kept[0].Layout), &l); err == nil {
				out = &l
				return nil
			}
		}
		if len(seats) == 0 {
			return nil
		}
		l := &Layout{}
		secIndex := map[string]int{}
		for _, st := range seats {
			i, ok := secIndex[st.Section]
			if !ok {
				i = len(l.Sections)
				secIndex[st.Section] = i
				l.Sections = append(l.Sections, LayoutSection{Name: st.Section, Zone: st.Zone})
			}
			sec := &l.Sections[i]
			if n := len(sec.Rows); n == 0 || sec.Rows[n-1].Label != st.Row {
				sec.Rows = append(sec.Rows, LayoutRow{Label: st.Row})
			}
			row := &sec.Rows[len(sec.Rows)-1]
			row.Numbers = append(row.Numbers, st.Number)
			if st.Accessible {
				row.Accessible = append(row.Accessible, st.Number)
			}
		}
		// Consecutive numbers read back as a count and a start.
		for si := range l.Sections {
			for ri := range l.Sections[si].Rows {
				row := &l.Sections[si].Rows[ri]
				consecutive := true
				for i := 1; i < len(row.Numbers); i++ {
					consecutive = consecutive && row.Numbers[i] == row.Numbers[i-1]+1
				}
				if consecutive {
					row.Seats, row.Start, row.Numbers = len(row.Numbers), row.Numbers[0], nil
				}
			}
		}
		out = l
		return nil
	})
	return out, err
}
