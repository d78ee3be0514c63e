package staffing

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/tenants"
)

// This file holds the staff directory: certifications and their inclusion
// hierarchy, roles, staff members with what they can work and hold, and the
// chain's settings. Each public method opens one tenant transaction.

// PostgreSQL error codes the module maps.
const (
	pgUnique    = "23505"
	pgExclusion = "23P01"
)

func pgErr(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// uuidArray writes ids as a PostgreSQL array literal (bound as text and
// cast with ::uuid[]): uuids need no quoting.
func uuidArray(ids []uuid.UUID) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// parseUUIDList reads array_to_string(uuid[], ',').
func parseUUIDList(s string) []uuid.UUID {
	out := []uuid.UUID{}
	for _, p := range strings.Split(s, ",") {
		if id, err := uuid.Parse(p); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// ---- certifications

// CertInput creates or changes a certification.
type CertInput struct {
	Key      string
	Name     string
	Includes []uuid.UUID
}

// SaveCert creates a certification (id nil) or changes one's name and
// inclusions. Inclusions form no cycle, and the closure the sign-up check
// reads is rewritten in the same transaction.
func (s *Service) SaveCert(ctx context.Context, t tenants.Tenant, id *uuid.UUID, in CertInput) (Certification, error) {
	name, err := textField("name", in.Name, 200, true)
	if err != nil {
		return Certification{}, err
	}
	includes := slices.Clone(in.Includes)
	slices.SortFunc(includes, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	c := Certification{Name: name, Includes: app.NonNil(slices.Compact(includes))}
	err = s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		// One writer of the hierarchy at a time: the closure is rebuilt whole.
		if err := tx.Exec(`LOCK TABLE stf_cert_includes IN SHARE ROW EXCLUSIVE MODE`).Error; err != nil {
			return err
		}
		if id == nil {
			key, err := keyField("key", in.Key)
			if err != nil {
				return err
			}
			c.ID, c.Key = uuid.Must(uuid.NewV7()), key
			res := tx.Exec(`INSERT INTO stf_certs (id, key, name) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`, c.ID, key, name)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.Conflict("duplicate", "a certification with key %s exists already", key)
			}
		} else {
			c.ID = *id
			var keys []string
			if err := tx.Raw(`UPDATE stf_certs SET name = ? WHERE id = ? RETURNING key`, name, c.ID).Scan(&keys).Error; err != nil {
				return err
			}
			if len(keys) == 0 {
				return app.NotFound("certification")
			}
			c.Key = keys[0]
			if err := tx.Exec(`DELETE FROM stf_cert_includes WHERE cert_id = ?`, c.ID).Error; err != nil {
				return err
			}
		}
		for _, inc := range c.Includes {
			if inc == c.ID {
				return app.InvalidField("certification_cycle", "includes", "a certification cannot include itself")
			}
			res := tx.Exec(`INSERT INTO stf_cert_includes (cert_id, included_id) SELECT ?, id FROM stf_certs WHERE id = ? ON CONFLICT DO NOTHING`, c.ID, inc)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.InvalidField("unknown_certification", "includes", "no certification %s in this chain", inc)
			}
		}
		if err := rebuildClosure(tx); err != nil {
			return err
		}
		return tx.Raw(`SELECT created_at FROM stf_certs WHERE id = ?`, c.ID).Row().Scan(&c.CreatedAt)
	})
	return c, err
}

// rebuildClosure rewrites stf_cert_closure from the inclusions: every
// certification satisfies itself and everything it includes, transitively.
// A cycle (two certifications each including the other) is refused.
func rebuildClosure(tx *gorm.DB) error {
	if err := tx.Exec(`DELETE FROM stf_cert_closure`).Error; err != nil {
		return err
	}
	// UNION (not UNION ALL) ends the recursion on a cycle, which is then refused.
	if err := tx.Exec(`INSERT INTO stf_cert_closure (satisfies_id, cert_id)
		WITH RECURSIVE c(holder, sat) AS (
		    SELECT id, id FROM stf_certs
		    UNION
		    SELECT c.holder, i.included_id FROM c JOIN stf_cert_includes i ON i.cert_id = c.sat
		)
		SELECT sat, holder FROM c`).Error; err != nil {
		return err
	}
	var cycles int64
	if err := tx.Raw(`SELECT count(*) FROM stf_cert_closure a JOIN stf_cert_closure b
		ON a.cert_id = b.satisfies_id AND a.satisfies_id = b.cert_id WHERE a.cert_id <> a.satisfies_id`).Row().Scan(&cycles); err != nil {
		return err
	}
	if cycles > 0 {
		return app.InvalidField("certification_cycle", "includes", "the inclusions would make a cycle")
	}
	return nil
}

// Certs lists the chain's certifications.
func (s *Service) Certs(ctx context.Context, t tenants.Tenant) ([]Certification, error) {
	var out []Certification
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var rows []struct {
			ID        uuid.UUID
			Key       string
			Name      string
			Includes  string
			CreatedAt time.Time
		}
		if err := tx.Raw(`SELECT c.id, c.key, c.name, c.created_at,
				coalesce((SELECT string_agg(i.included_id::text, ',') FROM stf_cert_includes i WHERE i.cert_id = c.id), '') AS includes
			FROM stf_certs c ORDER BY c.name, c.id`).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			out = append(out, Certification{ID: r.ID, Key: r.Key, Name: r.Name, Includes: parseUUIDList(r.Includes), CreatedAt: r.CreatedAt.UTC()})
		}
		return nil
	})
	return app.NonNil(out), err
}

// ---- roles

// RoleInput creates or changes a role; nil fields of a change stay.
type RoleInput struct {
	Key    string
	Name   *string
	Signup *string
	CertID **uuid.UUID
}

func checkSignup(s string) error {
	if s != SignupOpen && s != SignupApprove && s != SignupClosed {
		return app.InvalidField("invalid_request", "signup", "signup is open, approve or closed")
	}
	return nil
}

// SaveRole creates a role (id nil) or changes one.
func (s *Service) SaveRole(ctx context.Context, t tenants.Tenant, id *uuid.UUID, in RoleInput) (Role, error) {
	var r Role
	if in.Name != nil {
		name, err := textField("name", *in.Name, 200, true)
		if err != nil {
			return r, err
		}
		in.Name = &name
	}
	if in.Signup != nil {
		if err := checkSignup(*in.Signup); err != nil {
			return r, err
		}
	}
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if in.CertID != nil && *in.CertID != nil {
			if ok, err := exists(tx, `SELECT 1 FROM stf_certs WHERE id = ?`, **in.CertID); err != nil || !ok {
				if err != nil {
					return err
				}
				return app.InvalidField("unknown_certification", "certification_id", "no certification %s in this chain", **in.CertID)
			}
		}
		if id == nil {
			key, err := keyField("key", in.Key)
			if err != nil {
				return err
			}
			if in.Name == nil {
				return app.InvalidField("invalid_request", "name", "name is required")
			}
			signup := SignupClosed
			if in.Signup != nil {
				signup = *in.Signup
			}
			var cert *uuid.UUID
			if in.CertID != nil {
				cert = *in.CertID
			}
			newID := uuid.Must(uuid.NewV7())
			res := tx.Exec(`INSERT INTO stf_roles (id, key, name, signup, cert_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
				newID, key, *in.Name, signup, cert)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.Conflict("duplicate", "a role with key %s exists already", key)
			}
			id = &newID
		} else {
			sets, args := []string{}, []any{}
			if in.Name != nil {
				sets, args = append(sets, "name = ?"), append(args, *in.Name)
			}
			if in.Signup != nil {
				sets, args = append(sets, "signup = ?"), append(args, *in.Signup)
			}
			if in.CertID != nil {
				sets, args = append(sets, "cert_id = ?"), append(args, *in.CertID)
			}
			if len(sets) == 0 {
				return app.Invalid("invalid_request", "the change is empty")
			}
			res := tx.Exec(`UPDATE stf_roles SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, *id)...)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return app.NotFound("role")
			}
		}
		var err error
		r, err = findRole(tx, *id)
		return err
	})
	return r, err
}

const roleCols = `id, key, name, signup, cert_id, created_at`

func findRole(tx *gorm.DB, id uuid.UUID) (Role, error) {
	var rs []Role
	if err := tx.Raw(`SELECT `+roleCols+` FROM stf_roles WHERE id = ?`, id).Scan(&rs).Error; err != nil {
		return Role{}, err
	}
	if len(rs) == 0 {
		return Role{}, app.NotFound("role")
	}
	rs[0].CreatedAt = rs[0].CreatedAt.UTC()
	return rs[0], nil
}

// Roles lists the chain's roles.
func (s *Service) Roles(ctx context.Context, t tenants.Tenant) ([]Role, error) {
	var out []Role
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT ` + roleCols + ` FROM stf_roles ORDER BY name, id`).Scan(&out).Error
	})
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
	}
	return app.NonNil(out), err
}

func exists(tx *gorm.DB, q string, args ...any) (bool, error) {
	var n []int
	if err := tx.Raw(q, args...).Scan(&n).Error; err != nil {
		return false, err
	}
	return len(n) > 0, nil
}

// ---- staff

// CertGrant is a certification given to a staff member, with its expiry.
type CertGrant struct {
	CertID    uuid.UUID
	ExpiresOn *time.Time // a date; nil: does not expire
}

// StaffInput creates or changes a staff member; nil fields of a change stay.
type StaffInput struct {
	UserID     **uuid.UUID
	Name       *string
	Email      *string
	Phone      *string
	HomeVenues *[]uuid.UUID
	Active     *bool
	Roles      *[]uuid.UUID
	Certs      *[]CertGrant
}

// checkStaffInput validates what can be checked without the database, and
// the ids other owners know (users, venues) through the core.
func (s *Service) checkStaffInput(ctx context.Context, t tenants.Tenant, in *StaffInput, create bool) error {
	if create && in.Name == nil {
		return app.InvalidField("invalid_request", "name", "name is required")
	}
	var err error
	if in.Name != nil {
		var v string
		if v, err = textField("name", *in.Name, 200, true); err != nil {
			return err
		}
		in.Name = &v
	}
	if in.Email != nil {
		v, err := textField("email", *in.Email, 320, false)
		if err != nil {
			return err
		}
		if v != "" && (!strings.Contains(v, "@") || strings.ContainsAny(v, " ,;<>")) {
			return app.InvalidField("invalid_email", "email", "the email address is not valid")
		}
		v = strings.ToLower(v)
		in.Email = &v
	}
	if in.Phone != nil {
		v, err := textField("phone", *in.Phone, 40, false)
		if err != nil {
			return err
		}
		in.Phone = &v
	}
	if in.UserID != nil && *in.UserID != nil {
		if _, err := s.app.UserByID(ctx, t, **in.UserID); err != nil {
			var ae *app.Error
			if errors.As(err, &ae) && ae.Kind == app.KindNotFound {
				return app.InvalidField("unknown_user", "user_id", "no user %s in this chain", **in.UserID)
			}
			return err
		}
	}
	if in.HomeVenues != nil {
		venues := s.app.Venues()
		for _, v := range *in.HomeVenues {
			ok := false
			if venues != nil {
				if ok, err = venues.VenueExists(ctx, t, v); err != nil {
					return err
				}
			}
			if !ok {
				return app.InvalidField("unknown_venue", "home_venues", "no venue %s in this chain", v)
			}
		}
	}
	return nil
}

// SaveStaff creates a staff member (id nil) or changes one. The row is
// locked for the change, as sign-ups lock it: what a person can work and
// holds never changes under a sign-up being checked.
func (s *Service) SaveStaff(ctx context.Context, t tenants.Tenant, id *uuid.UUID, in StaffInput) (Staff, error) {
	if err := s.checkStaffInput(ctx, t, &in, id == nil); err != nil {
		return Staff{}, err
	}
	var out Staff
	err := s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		if id == nil {
			newID := uuid.Must(uuid.NewV7())
			var user *uuid.UUID
			if in.UserID != nil {
				user = *in.UserID
			}
			email, phone, venues, active := "", "", []uuid.UUID{}, true
			if in.Email != nil {
				email = *in.Email
			}
			if in.Phone != nil {
				phone = *in.Phone
			}
			if in.HomeVenues != nil {
				venues = *in.HomeVenues
			}
			if in.Active != nil {
				active = *in.Active
			}
			if err := staffWrite(tx.Exec(`INSERT INTO stf_staff (id, user_id, name, email, phone, home_venues, active)
				VALUES (?, ?, ?, ?, ?, ?::uuid[], ?)`, newID, user, *in.Name, email, phone, uuidArray(venues), active).Error); err != nil {
				return err
			}
			id = &newID
		} else {
			sets, args := []string{"updated_at = now()"}, []any{}
			add := func(col string, v any) { sets, args = append(sets, col+" = ?"), append(args, v) }
			if in.UserID != nil {
				add("user_id", *in.UserID)
			}
			if in.Name != nil {
				add("name", *in.Name)
			}
			if in.Email != nil {
				add("email", *in.Email)
			}
			if in.Phone != nil {
				add("phone", *in.Phone)
			}
			if in.HomeVenues != nil {
				sets, args = append(sets, "home_venues = ?::uuid[]"), append(args, uuidArray(*in.HomeVenues))
			}
			if in.Active != nil {
				add("active", *in.Active)
			}
			res := tx.Exec(`UPDATE stf_staff SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, *id)...)
			if err := staffWrite(res.Error); err != nil {
				return err
			}
			if res.RowsAffected == 0 {
				return app.NotFound("staff member")
			}
		}
		if in.Roles != nil {
			if err := tx.Exec(`DELETE FROM stf_staff_roles WHERE staff_id = ?`, *id).Error; err != nil {
				return err
			}
			for _, r := range *in.Roles {
				res := tx.Exec(`INSERT INTO stf_staff_roles (staff_id, role_id) SELECT ?, id FROM stf_roles WHERE id = ? ON CONFLICT DO NOTHING`, *id, r)
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected == 0 {
					if ok, err := exists(tx, `SELECT 1 FROM stf_roles WHERE id = ?`, r); err != nil || !ok {
						if err != nil {
							return err
						}
						return app.InvalidField("unknown_role", "roles", "no role %s in this chain", r)
					}
				}
			}
		}
		if in.Certs != nil {
			if err := tx.Exec(`DELETE FROM stf_staff_certs WHERE staff_id = ?`, *id).Error; err != nil {
				return err
			}
			for _, c := range *in.Certs {
				var exp *string
				if c.ExpiresOn != nil {
					d := c.ExpiresOn.Format(time.DateOnly)
					exp = &d
				}
				res := tx.Exec(`INSERT INTO stf_staff_certs (staff_id, cert_id, expires_on) SELECT ?, id, ?::date FROM stf_certs WHERE id = ?
					ON CONFLICT (staff_id, cert_id) DO UPDATE SET expires_on = excluded.expires_on`, *id, exp, c.CertID)
				if res.Error != nil {
					return res.Error
				}
				if res.RowsAffected == 0 {
					return app.InvalidField("unknown_certification", "certifications", "no certification %s in this chain", c.CertID)
				}
			}
		}
		list, err := loadStaff(tx, []uuid.UUID{*id})
		if err != nil {
			return err
		}
		out = list[0]
		return nil
	})
	return out, err
}

func staffWrite(err error) error {
	code, constraint := pgErr(err)
	switch {
	case code == pgUnique && constraint == "stf_staff_email_key":
		return app.Conflict("duplicate", "a staff member with this email exists already")
	case code == pgUnique && constraint == "stf_staff_user_id_key":
		return app.Conflict("duplicate", "this user is another staff member already")
	}
	return err
}

type staffRow struct {
	ID         uuid.UUID
	UserID     *uuid.UUID
	Name       string
	Email      string
	Phone      string
	HomeVenues string
	Active     bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// loadStaff reads staff members with their roles and certifications, in
// the order of ids; a missing one is not found.
func loadStaff(tx *gorm.DB, ids []uuid.UUID) ([]Staff, error) {
	var rows []staffRow
	if err := tx.Raw(`SELECT id, user_id, name, email, phone, array_to_string(home_venues, ',') AS home_venues, active, created_at, updated_at
		FROM stf_staff WHERE id = ANY(?::uuid[])`, uuidArray(ids)).Scan(&rows).Error; err != nil {
		return nil, err
	}
	byID := map[uuid.UUID]*Staff{}
	for _, r := range rows {
		byID[r.ID] = &Staff{ID: r.ID, UserID: r.UserID, Name: r.Name, Email: r.Email, Phone: r.Phone, HomeVenues: parseUUIDList(r.HomeVenues),
			Active: r.Active, Roles: []uuid.UUID{}, Certs: []HeldCert{}, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	}
	var roles []struct {
		StaffID uuid.UUID
		RoleID  uuid.UUID
	}
	if err := tx.Raw(`SELECT staff_id, role_id FROM stf_staff_roles WHERE staff_id = ANY(?::uuid[]) ORDER BY role_id`, uuidArray(ids)).Scan(&roles).Error; err != nil {
		return nil, err
	}
	for _, r := range roles {
		if s := byID[r.StaffID]; s != nil {
			s.Roles = append(s.Roles, r.RoleID)
		}
	}
	var certs []struct {
		StaffID   uuid.UUID
		CertID    uuid.UUID
		Key, Name string
		ExpiresOn *string
	}
	if err := tx.Raw(`SELECT sc.staff_id, sc.cert_id, c.key, c.name, to_char(sc.expires_on, 'YYYY-MM-DD') AS expires_on
		FROM stf_staff_certs sc JOIN stf_certs c ON c.id = sc.cert_id WHERE sc.staff_id = ANY(?::uuid[]) ORDER BY c.name`, uuidArray(ids)).Scan(&certs).Error; err != nil {
		return nil, err
	}
	for _, c := range certs {
		if s := byID[c.StaffID]; s != nil {
			s.Certs = append(s.Certs, HeldCert{CertID: c.CertID, Key: c.Key, Name: c.Name, ExpiresOn: c.ExpiresOn})
		}
	}
	out := make([]Staff, 0, len(ids))
	for _, id := range ids {
		s := byID[id]
		if s == nil {
			return nil, app.NotFound("staff member")
		}
		out = append(out, *s)
	}
	return out, nil
}

// StaffMember reads one staff member.
func (s *Service) StaffMember(ctx context.Context, t tenants.Tenant, id uuid.UUID) (Staff, error) {
	var out Staff
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		list, err := loadStaff(tx, []uuid.UUID{id})
		if err == nil {
			out = list[0]
		}
		return err
	})
	return out, err
}

// StaffFilter selects staff members.
type StaffFilter struct {
	VenueID uuid.UUID // home venue
	RoleID  uuid.UUID // can work this role
	After   uuid.UUID // cursor: ids after this one
	Limit   int
}

// ListStaff lists staff members by id (cursor pagination).
func (s *Service) ListStaff(ctx context.Context, t tenants.Tenant, f StaffFilter) ([]Staff, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	var out []Staff
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q, args := `SELECT id FROM stf_staff s WHERE id > ?`, []any{f.After}
		if f.VenueID != uuid.Nil {
			q, args = q+` AND ? = ANY(home_venues)`, append(args, f.VenueID)
		}
		if f.RoleID != uuid.Nil {
			q, args = q+` AND EXISTS (SELECT 1 FROM stf_staff_roles r WHERE r.staff_id = s.id AND r.role_id = ?)`, append(args, f.RoleID)
		}
		var ids []uuid.UUID
		if err := tx.Raw(q+` ORDER BY id LIMIT ?`, append(args, f.Limit)...).Scan(&ids).Error; err != nil {
			return err
		}
		var err error
		out, err = loadStaff(tx, ids)
		return err
	})
	return app.NonNil(out), err
}

// ExpiringCerts lists certifications that run out within days from today
// (UTC), soonest first: what staff and their managers are shown.
func (s *Service) ExpiringCerts(ctx context.Context, t tenants.Tenant, days int, staffID uuid.UUID) ([]Expiring, error) {
	var out []Expiring
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = s.expiring(tx, days, staffID)
		return err
	})
	return out, err
}

// expiring is ExpiringCerts inside a transaction.
func (s *Service) expiring(tx *gorm.DB, days int, staffID uuid.UUID) ([]Expiring, error) {
	today := s.app.Now().UTC().Format(time.DateOnly)
	q := `SELECT sc.staff_id, s.name AS staff_name, sc.cert_id, c.name AS cert_name,
			to_char(sc.expires_on, 'YYYY-MM-DD') AS expires_on, (sc.expires_on - ?::date) AS days_left
		FROM stf_staff_certs sc JOIN stf_staff s ON s.id = sc.staff_id JOIN stf_certs c ON c.id = sc.cert_id
		WHERE sc.expires_on >= ?::date AND sc.expires_on <= ?::date + ?::integer AND s.active`
	args := []any{today, today, today, days}
	if staffID != uuid.Nil {
		q, args = q+` AND sc.staff_id = ?`, append(args, staffID)
	}
	var out []Expiring
	err := tx.Raw(q+` ORDER BY sc.expires_on, s.name`, args...).Scan(&out).Error
	return app.NonNil(out), err
}

// ---- settings

// Settings reads the chain's staffing settings.
func (s *Service) Settings(ctx context.Context, t tenants.Tenant) (Settings, error) {
	var out Settings
	err := s.app.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		var err error
		out, err = readSettings(tx)
		return err
	})
	return out, err
}

func readSettings(tx *gorm.DB) (Settings, error) {
	var row struct {
		Settings
		Bands string
	}
	err := tx.Raw(`SELECT min_rest_minutes, rest_rule, max_week_minutes, week_rule, crowd_role_id, crowd_minimum, crowd_per,
		security_role_id, security_bands::text AS bands FROM stf_settings`).Scan(&row).Error
	if err != nil {
		return Settings{}, err
	}
	out := row.Settings
	out.SecurityBands, err = decodeBands(row.Bands)
	return out, err
}

// SaveSettings replaces the chain's settings.
func (s *Service) SaveSettings(ctx context.Context, t tenants.Tenant, in Settings) (Settings, error) {
	for _, r := range []struct{ field, v string }{{"rest_rule", in.RestRule}, {"week_rule", in.WeekRule}} {
		if r.v != RuleOff && r.v != RuleWarn && r.v != RuleHard {
			return Settings{}, app.InvalidField("invalid_request", r.field, "%s is off, warn or hard", r.field)
		}
	}
	switch {
	case in.MinRestMinutes < 0 || in.MinRestMinutes > 2880:
		return Settings{}, app.InvalidField("invalid_request", "min_rest_minutes", "min_rest_minutes is 0 to 2880")
	case in.MaxWeekMinutes < 60 || in.MaxWeekMinutes > 10080:
		return Settings{}, app.InvalidField("invalid_request", "max_week_minutes", "max_week_minutes is 60 to 10080")
	case in.CrowdMinimum < 0 || in.CrowdMinimum > 1000:
		return Settings{}, app.InvalidField("invalid_request", "crowd_minimum", "crowd_minimum is 0 to 1000")
	case in.CrowdPer < 1 || in.CrowdPer > 100000:
		return Settings{}, app.InvalidField("invalid_request", "crowd_per", "crowd_per is 1 to 100000")
	}
	bands, err := encodeBands(in.SecurityBands)
	if err != nil {
		return Settings{}, err
	}
	var out Settings
	err = s.app.Tx(ctx, t, func(tx *gorm.DB) error {
		for _, r := range []struct {
			field string
			id    *uuid.UUID
		}{{"crowd_role_id", in.CrowdRoleID}, {"security_role_id", in.SecurityRoleID}} {
			if r.id == nil {
				continue
			}
			if ok, err := exists(tx, `SELECT 1 FROM stf_roles WHERE id = ?`, *r.id); err != nil || !ok {
				if err != nil {
					return err
				}
				return app.InvalidField("unknown_role", r.field, "no role %s in this chain", *r.id)
			}
		}
		if err := tx.Exec(`UPDATE stf_settings SET min_rest_minutes = ?, rest_rule = ?, max_week_minutes = ?, week_rule = ?,
			crowd_role_id = ?, crowd_minimum = ?, crowd_per = ?, security_role_id = ?, security_bands = ?::jsonb, updated_at = now()`,
			in.MinRestMinutes, in.RestRule, in.MaxWeekMinutes, in.WeekRule, in.CrowdRoleID, in.CrowdMinimum, in.CrowdPer,
			in.SecurityRoleID, bands).Error; err != nil {
			return err
		}
		out, err = readSettings(tx)
		return err
	})
	return out, err
}
