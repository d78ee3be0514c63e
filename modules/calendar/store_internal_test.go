package calendar

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"marquee/app"
)

// Constraint violations become the API's errors at the store boundary, even
// when wrapped; anything else passes through untouched.
func TestMapStoreError(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{&pgconn.PgError{Code: "23P01", ConstraintName: "occupancy_stage_overlap"}, 409, "schedule_conflict"},
		{fmt.Errorf("tx: %w", &pgconn.PgError{Code: "23P01", ConstraintName: "occupancy_exclusive_vs_stage"}), 409, "schedule_conflict"},
		{&pgconn.PgError{Code: "23P01", ConstraintName: "something_else"}, 409, "conflict"},
		{&pgconn.PgError{Code: "23503", ConstraintName: "events_promoter_id_fkey"}, 400, "invalid_request"},
		{&pgconn.PgError{Code: "23503", ConstraintName: "events_stage_fkey"}, 404, "not_found"},
		{&pgconn.PgError{Code: "23505", ConstraintName: "stages_venue_name_key"}, 409, "stage_name_taken"},
		// The names after the contract migration (cal_ + the old name) map the same.
		{&pgconn.PgError{Code: "23P01", ConstraintName: "cal_occupancy_stage_overlap"}, 409, "schedule_conflict"},
		{&pgconn.PgError{Code: "23503", ConstraintName: "cal_events_promoter_id_fkey"}, 400, "invalid_request"},
		{&pgconn.PgError{Code: "23503", ConstraintName: "cal_holds_stage_fkey"}, 404, "not_found"},
		{&pgconn.PgError{Code: "23503", ConstraintName: "cal_holds_venue_id_fkey"}, 404, "not_found"},
		{&pgconn.PgError{Code: "23505", ConstraintName: "cal_stages_venue_name_key"}, 409, "stage_name_taken"},
	}
	for _, c := range cases {
		var e *app.Error
		if !errors.As(mapStoreError(c.err), &e) || e.Status() != c.status || e.Code != c.code {
			t.Errorf("%v: got %v, want %d %s", c.err, mapStoreError(c.err), c.status, c.code)
		}
	}
	plain := errors.New("connection reset")
	if mapStoreError(plain) != plain || mapStoreError(nil) != nil {
		t.Error("other errors must pass through")
	}
	if !retryable(&pgconn.PgError{Code: "40P01"}) || !retryable(&pgconn.PgError{Code: "40001"}) || retryable(plain) {
		t.Error("retryable")
	}
}

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd", 101: "101st", 111: "111th"} {
		if got := ordinal(n); got != want {
			t.Errorf("ordinal(%d) = %s", n, got)
		}
	}
}
