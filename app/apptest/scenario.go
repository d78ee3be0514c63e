package apptest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"marquee/app"
)

// Scenario is one API request through the real router and what must come of
// it, in the manner of pocketbase's tests.ApiScenario: a table of them reads
// as the route's contract.
type Scenario struct {
	Name   string
	Method string // GET when empty
	Path   string
	// Tenant is the slug of the tenant host ("" is the base host); it is
	// also where Changes counts rows.
	Tenant  string
	Token   string // bearer token, if any
	Headers map[string]string
	// Body is nil, a string or []byte sent as is, or a value sent as JSON
	// (Env.Do); Content-Type is application/json unless Headers say otherwise.
	Body any

	// Status is the expected HTTP status.
	Status int
	// Code, if set, is the expected problem code (and the response must be a
	// problem document).
	Code string
	// Problem asks for a clean problem document without naming its code: the
	// problem content type and a code that is neither empty nor "internal".
	Problem bool
	// Contains and Excludes are substrings the body must (not) contain.
	Contains, Excludes []string
	// JSON, if set, gets the decoded body (a map, slice or scalar, as
	// encoding/json decodes into any) for further checks.
	JSON func(t testing.TB, body any)

	// Changes maps tables of the scenario's tenant to how their row counts
	// must change with the request: 0 means the table must not change.
	Changes map[string]int

	// Before runs before the request (and before Changes counts); After runs
	// after the checks above, with the response.
	Before func(t testing.TB, env *Env)
	After  func(t testing.TB, env *Env, res Response)
}

// RunScenarios runs each scenario as a subtest, in order, on env.
func RunScenarios(t *testing.T, env *Env, scenarios []Scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) { sc.run(t, env) })
	}
}

func (sc Scenario) run(t *testing.T, env *Env) {
	t.Helper()
	if sc.Before != nil {
		sc.Before(t, env)
	}
	before := env.rowCounts(t, sc.Tenant, sc.Changes)
	method := sc.Method
	if method == "" {
		method = http.MethodGet
	}
	var headers []string
	for k, v := range sc.Headers {
		headers = append(headers, k, v)
	}
	res := env.Do(t, method, sc.Tenant, sc.Path, sc.Token, sc.Body, headers...)

	if res.Status != sc.Status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, sc.Path, res.Status, sc.Status, res.Body)
	}
	if sc.Code != "" || sc.Problem {
		if ct := res.Header.Get("Content-Type"); ct != app.ProblemContentType {
			t.Errorf("content type %q, want %s: %s", ct, app.ProblemContentType, res.Body)
		}
		switch code := res.Code(); {
		case sc.Code != "" && code != sc.Code:
			t.Errorf("problem code %q, want %q: %s", code, sc.Code, res.Body)
		case code == "" || code == "internal":
			t.Errorf("not a clean problem (code %q): %s", code, res.Body)
		}
	}
	for _, s := range sc.Contains {
		if !strings.Contains(string(res.Body), s) {
			t.Errorf("body lacks %q: %s", s, res.Body)
		}
	}
	for _, s := range sc.Excludes {
		if strings.Contains(string(res.Body), s) {
			t.Errorf("body contains %q: %s", s, res.Body)
		}
	}
	if sc.JSON != nil {
		var body any
		res.JSON(t, &body)
		sc.JSON(t, body)
	}
	after := env.rowCounts(t, sc.Tenant, sc.Changes)
	for table, want := range sc.Changes {
		if got := after[table] - before[table]; got != int64(want) {
			t.Errorf("rows of %s changed by %d, want %d (%d → %d)", table, got, want, before[table], after[table])
		}
	}
	if sc.After != nil {
		sc.After(t, env, res)
	}
}

// rowCounts counts the rows of tables in a tenant's schema.
func (e *Env) rowCounts(t testing.TB, slug string, tables map[string]int) map[string]int64 {
	t.Helper()
	if len(tables) == 0 {
		return nil
	}
	if slug == "" {
		t.Fatal("Changes needs the scenario's Tenant")
	}
	tn, err := e.App.Tenants.Lookup(context.Background(), slug)
	if err != nil {
		t.Fatalf("tenant %s: %v", slug, err)
	}
	counts := make(map[string]int64, len(tables))
	for table := range tables {
		var n int64
		q := fmt.Sprintf("SELECT count(*) FROM %s", pgx.Identifier{tn.Schema, table}.Sanitize())
		if err := e.App.DB.Raw(q).Row().Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}
