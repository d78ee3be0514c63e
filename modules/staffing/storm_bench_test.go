package staffing_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app/apptest"
	"marquee/modules/staffing"
	"marquee/policies"
	"marquee/tenants"
)

// stormShifts adds n shifts of the open bar role on the venue's day at
// base (n/10 per hour slot, 2 hours long from 14:00 on, so neighbouring
// slots overlap and a person cannot hold both), places each, and answers
// their ids.
func stormShifts(b *testing.B, c *chain, base time.Time, n, places int) []uuid.UUID {
	b.Helper()
	ids := make([]uuid.UUID, n)
	err := c.e.App.Tx(context.Background(), c.t, func(tx *gorm.DB) error {
		return tx.Raw(`INSERT INTO stf_shifts (id, event_id, venue_id, timezone, day, role_id, during, places)
			SELECT gen_random_uuid(), ?, ?, 'America/New_York', ?::date, ?,
			       tstzrange(?::timestamptz + (g % 10) * interval '1 hour', ?::timestamptz + (g % 10) * interval '1 hour' + interval '2 hours', '[)'), ?
			FROM generate_series(0, ? - 1) g RETURNING id`,
			c.event, c.venue, base.In(newYork).Format(time.DateOnly), c.roles["bar"], base, base, places, n).Scan(&ids).Error
	})
	if err != nil {
		b.Fatal(err)
	}
	return ids
}

// stormCheck counts over-filled shifts (filled past places, or a counter
// that is not the places held) and pairs of one person's active
// assignments that overlap.
func stormCheck(b *testing.B, c *chain) (overfilled, overlapping int) {
	b.Helper()
	overfilled = c.count(b, `SELECT count(*) FROM stf_shifts s WHERE s.filled > s.places
		OR s.filled <> (SELECT count(*) FROM stf_assignments a WHERE a.shift_id = s.id AND a.status IN ('assigned', 'confirmed'))`)
	overlapping = c.count(b, `SELECT count(*) FROM stf_assignments a JOIN stf_assignments o ON o.staff_id = a.staff_id AND o.id < a.id AND o.during && a.during
		WHERE a.status IN ('requested', 'assigned', 'confirmed') AND o.status IN ('requested', 'assigned', 'confirmed')`)
	return overfilled, overlapping
}

// BenchmarkSignupStorm: 2,000 staff open their schedule at once and sign
// up for 500 shifts (4 places each, in overlapping two-hour slots), each
// trying up to three shifts of their schedule's open list until one takes
// them, through the HTTP API; then the same attempts on a second set of 500
// shifts run the same conditional insert directly against PostgreSQL (a
// pgx transaction: the person's row locked, the statement, commit). It
// prints assignments per second of both and their ratio (goal ≥ 0.5), and
// checks that no shift is over-filled and nobody holds overlapping shifts:
//
//	go test -run '^$' -bench SignupStorm -benchtime 1x ./modules/staffing/
func BenchmarkSignupStorm(b *testing.B) {
	const people, shifts, places, tries = 2000, 500, 4, 3
	e := startEnv(b, nil)
	c := newChain(b, e, "storm")
	ctx := context.Background()
	day := c.eventAt.In(newYork)
	apiBase := time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 0, 0, newYork)
	sqlBase := apiBase.AddDate(0, 0, 1)
	apiShifts := stormShifts(b, c, apiBase, shifts, places)
	sqlShifts := stormShifts(b, c, sqlBase, shifts, places)
	c.publish(b, apiBase)
	c.publish(b, sqlBase)

	// 2,000 people who can sign in (the fixture, not the subject): users,
	// then staff records in bulk, then a session each from its own address.
	staffIDs, toks := make([]uuid.UUID, people), make([]string, people)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range people {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			email := fmt.Sprintf("p%04d@%s.test", i, c.slug)
			u := e.User(b, c.t, email, policies.RoleStaffMember, "")
			staffIDs[i] = uuid.Must(uuid.NewV7())
			if err := e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
				if err := tx.Exec(`INSERT INTO stf_staff (id, user_id, name, email) VALUES (?, ?, ?, ?)`, staffIDs[i], u.ID, fmt.Sprintf("P%04d", i), email).Error; err != nil {
					return err
				}
				return tx.Exec(`INSERT INTO stf_staff_roles (staff_id, role_id) VALUES (?, ?)`, staffIDs[i], c.roles["bar"]).Error
			}); err != nil {
				b.Error(err)
				return
			}
			tok, _, err := e.App.Login(ctx, c.t, email, apptest.Password, fmt.Sprintf("10.%d.%d.1", i/250, i%250))
			if err != nil {
				b.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	for b.Loop() {
		// Through the API, in two waves: everyone opens their schedule at
		// once (its read times are reported), then everyone signs up at
		// once, each trying up to three random shifts of the day until one
		// takes them. Assignments per second are the second wave's.
		var reads []time.Duration
		var readMu sync.Mutex
		var apiPlaced, apiFull, apiOther, slowReads atomic.Int64
		var otherMu sync.Mutex
		others := map[string]int{}
		other := func(what string) {
			apiOther.Add(1)
			otherMu.Lock()
			others[what]++
			otherMu.Unlock()
		}
		start := make(chan struct{})
		for i := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				t := time.Now()
				res, err := e.Try("GET", c.slug, "/api/v1/staffing/me", toks[i], nil)
				if err != nil || res.Status != http.StatusOK {
					slowReads.Add(1) // the person signs up all the same
					return
				}
				readMu.Lock()
				reads = append(reads, time.Since(t))
				readMu.Unlock()
			}()
		}
		tr := time.Now()
		close(start)
		wg.Wait()
		readWall := time.Since(tr)
		start = make(chan struct{})
		for i := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range tries {
					shift := apiShifts[rand.IntN(len(apiShifts))]
					res, err := e.Try("POST", c.slug, "/api/v1/staffing/me/shifts/"+shift.String()+"/signup", toks[i], nil)
					switch {
					case err != nil:
						other(err.Error())
					case res.Status == http.StatusCreated:
						apiPlaced.Add(1)
						return
					case res.Status == http.StatusConflict:
						apiFull.Add(1)
					default:
						other(fmt.Sprintf("sign-up %d %s", res.Status, res.Code()))
					}
				}
			}()
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		apiWall := time.Since(t0)

		// Directly: the same conditional insert, the same people, three
		// random shifts each of the second set.
		var sqlPlaced, sqlRefused atomic.Int64
		start = make(chan struct{})
		for i := range people {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range tries {
					shift := sqlShifts[rand.IntN(len(sqlShifts))]
					var placed int
					err := e.App.PgxTx(ctx, c.t, tenants.TxOptions{Retry: true}, func(tx *tenants.Pgx) error {
						if _, err := tx.Exec(`SELECT 1 FROM stf_staff WHERE id = $1 FOR UPDATE`, staffIDs[i]); err != nil {
							return err
						}
						var took, ok int
						return tx.QueryRow(staffing.PlaceSQL, shift, staffIDs[i], uuid.Must(uuid.NewV7()), time.Now().UTC(), staffing.StatusAssigned, false).Scan(&took, &ok, &placed)
					})
					if err != nil {
						b.Error(err)
						return
					}
					if placed == 1 {
						sqlPlaced.Add(1)
						return
					}
					sqlRefused.Add(1)
				}
			}()
		}
		t1 := time.Now()
		close(start)
		wg.Wait()
		sqlWall := time.Since(t1)

		overfilled, overlapping := stormCheck(b, c)
		apiRate := float64(apiPlaced.Load()) / apiWall.Seconds()
		sqlRate := float64(sqlPlaced.Load()) / sqlWall.Seconds()
		b.ReportMetric(apiRate, "api-assign/s")
		b.ReportMetric(sqlRate, "sql-assign/s")
		b.ReportMetric(apiRate/sqlRate, "ratio")
		fmt.Printf("sign-up storm: %d staff, %d shifts × %d places, up to %d tries each\n", people, shifts, places, tries)
		slices.Sort(reads)
		if len(reads) > 0 {
			fmt.Printf("  schedules opened at once: %d read in %v (p50 %v, p99 %v), %d failed or timed out\n", len(reads), readWall.Round(time.Millisecond),
				reads[len(reads)/2].Round(time.Millisecond), reads[len(reads)*99/100].Round(time.Millisecond), slowReads.Load())
		}
		fmt.Printf("  API:    %d placed, %d refused (full/overlap), %d other, in %v → %.0f assignments/s\n",
			apiPlaced.Load(), apiFull.Load(), apiOther.Load(), apiWall.Round(time.Millisecond), apiRate)
		fmt.Printf("  direct: %d placed, %d refused, in %v → %.0f assignments/s\n", sqlPlaced.Load(), sqlRefused.Load(), sqlWall.Round(time.Millisecond), sqlRate)
		fmt.Printf("  ratio API/direct: %.2f (goal ≥ 0.5); over-filled shifts: %d; overlapping assignments: %d\n", apiRate/sqlRate, overfilled, overlapping)
		if overfilled != 0 || overlapping != 0 || apiOther.Load() != 0 {
			b.Fatalf("over-filled %d, overlapping %d, other answers %v", overfilled, overlapping, others)
		}
		// The next iteration starts empty.
		if err := e.App.Tx(ctx, c.t, func(tx *gorm.DB) error {
			if err := tx.Exec(`DELETE FROM stf_assignments WHERE shift_id = ANY(?::uuid[]) OR shift_id = ANY(?::uuid[])`, uuidList(apiShifts), uuidList(sqlShifts)).Error; err != nil {
				return err
			}
			return tx.Exec(`UPDATE stf_shifts SET filled = 0`).Error
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func uuidList(ids []uuid.UUID) string {
	s := "{"
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += id.String()
	}
	return s + "}"
}
