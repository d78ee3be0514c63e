package door

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/modules/inventory/internal/model"
	"marquee/tenants"
)

// Gate is a named entrance that admits only some zones.
type Gate struct {
	Name  string      `json:"name"`
	Zones []uuid.UUID `json:"zones"`
}

// Settings are an event's door rules.
type Settings struct {
	EventID uuid.UUID `json:"event_id"`
	// Reentry lets a holder who went out come in again (else their ticket
	// answers already_admitted after an exit).
	Reentry bool `json:"reentry"`
	// ValidFrom and ValidUntil go into tokens issued from then on (and
	// re-issued ones): a scan outside them answers not_yet_valid / expired.
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	// EveryoneOutAt, when set, is the time after which everyone inside
	// counts as out (a venue cleared at curfew): attendance's inside drops
	// to 0 at that instant, and a scan after it of a ticket last seen before
	// it is a re-entry (allowed or not by Reentry).
	EveryoneOutAt *time.Time `json:"everyone_out_at,omitempty"`
	// Gates not listed admit every zone.
	Gates []Gate `json:"gates"`
	// RevocationSeq is the latest revocation's sequence number.
	RevocationSeq int64 `json:"revocation_seq"`
}

// MaxGates bounds an event's gate list.
const MaxGates = 100

// Validate checks settings before they are stored.
func (st Settings) Validate() error {
	if st.ValidFrom != nil && st.ValidUntil != nil && !st.ValidFrom.Before(*st.ValidUntil) {
		return model.Invalid("validity", "valid_from must be before valid_until")
	}
	if len(st.Gates) > MaxGates {
		return model.Invalid("gates", "at most %d gates", MaxGates)
	}
	var names []string
	for _, g := range st.Gates {
		if l := len([]rune(g.Name)); l < 1 || l > 40 || slices.Contains(names, g.Name) {
			return model.Invalid("gates", "each gate has a unique name of 1 to 40 characters")
		}
		if len(g.Zones) == 0 {
			return model.Invalid("gates", "gate %q admits no zone: list at least one, or leave the gate out to admit every zone", g.Name)
		}
		names = append(names, g.Name)
	}
	return nil
}

// Settings reads an event's door rules (defaults when never set).
func (s *Service) Settings(ctx context.Context, t tenants.Tenant, eventID uuid.UUID) (Settings, error) {
	var st Settings
	err := s.d.App.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		st, err = readSettings(tx, eventID)
		return err
	})
	return st, err
}

func readSettings(tx *gorm.DB, eventID uuid.UUID) (Settings, error) {
	st := Settings{EventID: eventID, Gates: []Gate{}}
	var rows []struct {
		Reentry bool       `gorm:"column:reentry"`
		From    *time.Time `gorm:"column:valid_from"`
		Until   *time.Time `gorm:"column:valid_until"`
		Seq     int64      `gorm:"column:revocation_seq"`
		Out     *time.Time `gorm:"column:everyone_out_at"`
	}
	if err := tx.Raw(`SELECT reentry, valid_from, valid_until, revocation_seq, everyone_out_at FROM inv_door_events WHERE event_id = ?`, eventID).Scan(&rows).Error; err != nil {
		return st, err
	}
	if len(rows) == 1 {
		st.Reentry, st.ValidFrom, st.ValidUntil, st.RevocationSeq, st.EveryoneOutAt = rows[0].Reentry, rows[0].From, rows[0].Until, rows[0].Seq, utcPtr(rows[0].Out)
	}
	var gates []struct {
		Name  string `gorm:"column:name"`
		Zones string `gorm:"column:zone_ids"`
	}
	if err := tx.Raw(`SELECT name, array_to_json(zone_ids)::text AS zone_ids FROM inv_door_gates WHERE event_id = ? ORDER BY name`, eventID).Scan(&gates).Error; err != nil {
		return st, err
	}
	for _, g := range gates {
		gt := Gate{Name: g.Name, Zones: []uuid.UUID{}}
		if err := json.Unmarshal([]byte(g.Zones), &gt.Zones); err != nil {
			return st, err
		}
		st.Gates = append(st.Gates, gt)
	}
	return st, nil
}

// SetSettings replaces an event's door rules. Every gate's zones must be
// the event's (inventory configured first).
func (s *Service) SetSettings(ctx context.Context, t tenants.Tenant, in Settings) (Settings, error) {
	var out Settings
	err := s.d.Tx(ctx, t, func(tx *gorm.DB) error {
		var zones []uuid.UUID
		if err := tx.Raw(`SELECT id FROM inv_zones WHERE event_id = ?`, in.EventID).Scan(&zones).Error; err != nil {
			return err
		}
		if len(zones) == 0 && len(in.Gates) > 0 {
			return app.NotFoundCode("no_inventory", "the event has no zones configured; configure its inventory first")
		}
		for _, g := range in.Gates {
			for _, z := range g.Zones {
				if !slices.Contains(zones, z) {
					return model.Invalid("gates", "gate %q names zone %s, which is not this event's", g.Name, z)
				}
			}
		}
		if err := tx.Exec(`INSERT INTO inv_door_events (event_id, reentry, valid_from, valid_until, everyone_out_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (event_id) DO UPDATE SET reentry = EXCLUDED.reentry, valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until,
				everyone_out_at = EXCLUDED.everyone_out_at, updated_at = now()`,
			in.EventID, in.Reentry, in.ValidFrom, in.ValidUntil, in.EveryoneOutAt).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM inv_door_gates WHERE event_id = ?`, in.EventID).Error; err != nil {
			return err
		}
		for _, g := range in.Gates {
			ids, err := json.Marshal(g.Zones)
			if err != nil {
				return err
			}
			if err := tx.Exec(`INSERT INTO inv_door_gates (event_id, name, zone_ids) VALUES (?, ?, ARRAY(SELECT jsonb_array_elements_text(?::jsonb))::uuid[])`,
				in.EventID, g.Name, string(ids)).Error; err != nil {
				return err
			}
		}
		var err error
		out, err = readSettings(tx, in.EventID)
		return err
	})
	return out, err
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
