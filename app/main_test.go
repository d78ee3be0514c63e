package app_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/policies"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "app", &dbURL) }

// probeModule is a module used only in tests: it registers one of everything
// the contract offers and records what the core did with it.
type probeModule struct {
	mu     sync.Mutex
	venues map[uuid.UUID]bool
	tasks  []string
	seeded []string
	slow   chan struct{}
}

// bigAnswer is larger than any socket buffer on loopback: a client that does
// not read it blocks its writer.
var bigAnswer = make([]byte, 32<<20)

func newProbe() *probeModule {
	return &probeModule{venues: map[uuid.UUID]bool{}, slow: make(chan struct{})}
}

type probeThing struct {
	Venue  string `json:"venue"`
	Tenant string `json:"tenant"`
}

type probeOK struct {
	OK bool `json:"ok"`
}

type probeCharge struct {
	Amount int64 `json:"amount"`
}

type probeCharged struct {
	Seq int64     `json:"seq"`
	ID  uuid.UUID `json:"id"`
}

type probeDone struct {
	Done bool `json:"done"`
}

func (p *probeModule) Name() string { return "probe" }

func (p *probeModule) Register(r *app.Registrar) error {
	a := r.Core()
	r.Grants(
		policies.Grant{Role: policies.RoleVenueManager, Object: "probe.things", Action: policies.Read},
		policies.Grant{Role: policies.RoleChainAdmin, Object: "probe.things", Action: policies.Read},
	)
	r.API(http.MethodGet, "/probe/venues/:venueId/things", app.RequireAtVenue("probe.things", policies.Read, "venueId"), "probe",
		app.Handle(func(c *gin.Context, _ app.None) (probeThing, error) {
			return probeThing{Venue: c.Param("venueId"), Tenant: app.TenantOf(c).Slug}, nil
		}))
	r.API(http.MethodGet, "/probe/ping", app.Public(), "public probe", app.Handle(func(*gin.Context, app.None) (probeOK, error) { return probeOK{OK: true}, nil }))
	r.API(http.MethodGet, "/probe/broken", app.Public(), "a probe that fails on the server", app.Handle(func(*gin.Context, app.None) (probeOK, error) {
		return probeOK{}, errors.New("probe broke")
	}))
	r.API(http.MethodGet, "/probe/light", app.Public(), "light probe", app.Handle(func(*gin.Context, app.None) (probeOK, error) { return probeOK{OK: true}, nil })).Light()
	r.API(http.MethodGet, "/probe/big", app.Public(), "a large answer", app.Raw(func(c *gin.Context) {
		c.Data(http.StatusOK, "application/octet-stream", bigAnswer)
	}).Produces("application/octet-stream", ""))
	r.API(http.MethodPost, "/probe/charges", app.SignedIn(), "idempotent probe", app.Handle(func(c *gin.Context, req probeCharge) (probeCharged, error) {
		var e app.LedgerEntry
		err := a.Tx(c.Request.Context(), app.TenantOf(c), func(tx *gorm.DB) error {
			var err error
			e, err = a.Ledger.Append(tx, "probe.charge", "probe", req.Amount, "EUR", "")
			time.Sleep(50 * time.Millisecond) // not synchronisation: widens the window for concurrent retries
			return err
		})
		return probeCharged{Seq: e.Seq, ID: e.ID}, err
	}).Created().Before(a.Idempotent()))
	// It documents one shape and answers another: the response check must see it.
	r.API(http.MethodGet, "/probe/lies", app.Public(), "a probe whose answer breaks its document", app.Raw(func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"ok": "not a boolean"})
	}).Produces("application/json", probeOK{}))
	r.APIStream("/probe/stream", app.Public(), "probe stream", func(c *gin.Context) { a.Realtime.ServeSSE(c, "probe") })
	r.API(http.MethodGet, "/probe/slow", app.Public(), "slow probe", app.Handle(func(*gin.Context, app.None) (probeDone, error) {
		<-p.slow
		time.Sleep(300 * time.Millisecond) // not synchronisation: keeps the request in flight after shutdown begins
		return probeDone{Done: true}, nil
	}))
	r.Portal(http.MethodGet, "/probe", app.Require("probe.things", policies.Read), func(c *gin.Context) {
		a.RenderPortal(c, http.StatusOK, "Probe", "<p id=probe>probe page</p>")
	})
	r.Nav("Probe things", "/portal/probe", 50, app.Require("probe.things", policies.Read))
	r.Task("probe:record", func(ctx context.Context, t tenants.Tenant, payload []byte) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.tasks = append(p.tasks, t.Slug+":"+string(payload))
		return nil
	})
	r.Every(jobs.Periodic{Cron: "@hourly", Type: "probe:record", Queue: jobs.QueueDefault, Bucket: time.Hour})
	r.Seed(func(ctx context.Context, t tenants.Tenant, _ *app.Seeding) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.seeded = append(p.seeded, t.Slug)
		return nil
	})
	r.ProvideVenues(p)
	return nil
}

func (p *probeModule) VenueExists(_ context.Context, _ tenants.Tenant, id uuid.UUID) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.venues[id], nil
}

func (p *probeModule) addVenue() uuid.UUID {
	id := uuid.Must(uuid.NewV7())
	p.mu.Lock()
	p.venues[id] = true
	p.mu.Unlock()
	return id
}

func startProbe(t *testing.T, opts ...func(*apptest.Options)) (*apptest.Env, *probeModule) {
	t.Helper()
	p := newProbe()
	o := apptest.Options{Modules: []app.Module{p}}
	for _, f := range opts {
		f(&o)
	}
	return apptest.Start(t, dbURL, o), p
}

func ownerOf(tn tenants.Tenant) string { return "owner@" + tn.Slug + ".test" }

func wantStatus(t *testing.T, res apptest.Response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if code != "" {
		if ct := res.Header.Get("Content-Type"); ct != app.ProblemContentType {
			t.Fatalf("content type %q, want %s", ct, app.ProblemContentType)
		}
		if got := res.Code(); got != code {
			t.Fatalf("problem code %q, want %q: %s", got, code, res.Body)
		}
	}
}
