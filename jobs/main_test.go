package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/jobs"
	"marquee/tenants"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "jobs", &dbURL) }

const probeType = "test:probe"

// run is what one handler invocation saw.
type run struct {
	Tenant  string // the tenant the handler was given
	Schema  string // current_schema() inside its Tx
	Emails  string // every user email visible inside its Tx
	Port    string // the port of the PostgreSQL server its Tx ran on
	Payload string
}

type recorder struct {
	mu   sync.Mutex
	runs []run
}

func (r *recorder) add(x run) {
	r.mu.Lock()
	r.runs = append(r.runs, x)
	r.mu.Unlock()
}

func (r *recorder) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.runs...)
}

func (r *recorder) count(slug string) int {
	n := 0
	for _, x := range r.all() {
		if x.Tenant == slug {
			n++
		}
	}
	return n
}

// probe is a test-only module: one task type whose handler records what it
// saw inside its tenant's scope.
type probe struct {
	rec      *recorder
	periodic *jobs.Periodic
}

func (p *probe) Name() string { return "probe" }

// settleType is a probe task that settles started work: it runs for a
// suspended tenant too.
const settleType = "test:settle"

func (p *probe) Register(r *app.Registrar) error {
	a := r.Core()
	handler := func(ctx context.Context, t tenants.Tenant, payload []byte) error {
		if strings.Contains(string(payload), `"fail":true`) {
			return errors.New("probe failure on request")
		}
		var x run
		err := a.Tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Raw("SELECT current_schema() AS schema, coalesce(string_agg(email, ',' ORDER BY email), '') AS emails, current_setting('port') FROM users").
				Row().Scan(&x.Schema, &x.Emails, &x.Port)
		})
		if err != nil {
			return err
		}
		x.Tenant, x.Payload = t.Slug, string(payload)
		p.rec.add(x)
		return nil
	}
	r.Task(probeType, handler)
	r.TaskEvenWhenSuspended(settleType, handler)
	if p.periodic != nil {
		r.Every(*p.periodic)
	}
	return nil
}

// start builds an App with the probe module and deletes this package's
// keys from Redis (tasks left by earlier tests; other packages' keys in the
// shared database are not touched); tenants left active by earlier tests
// are suspended at the end of each test so that fan-outs only see the
// current test's tenants.
func start(t *testing.T, p *probe) *apptest.Env {
	t.Helper()
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{p}})
	if err := apptest.ClearRedis(context.Background(), env.App.Config.Deployment()); err != nil {
		t.Fatal(err)
	}
	return env
}

// tenant creates an active tenant with one user, suspended when the test ends.
func tenant(t *testing.T, env *apptest.Env, prefix string) tenants.Tenant {
	t.Helper()
	ctx := context.Background()
	tn, err := env.App.Tenants.Create(ctx, apptest.UniqueSlug(prefix), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.CreateUser(ctx, tn, "probe@"+tn.Slug+".test", "Probe", apptest.Password); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.App.Tenants.Suspend(context.Background(), tn.Slug) })
	return tn
}

// serve runs a worker server until the test ends.
func serve(t *testing.T, env *apptest.Env) {
	t.Helper()
	srv := env.App.Jobs.NewServer(4)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
}

func redisOpt(t *testing.T, env *apptest.Env) asynq.RedisConnOpt {
	t.Helper()
	return env.App.AsynqRedis() // the test Redis, or the cluster the App is on
}

func inspector(t *testing.T, env *apptest.Env) *asynq.Inspector {
	t.Helper()
	ins := asynq.NewInspector(redisOpt(t, env))
	t.Cleanup(func() { ins.Close() })
	return ins
}

// checkOwnScope asserts that every recorded run of slug saw its own schema
// and only its own rows.
func checkOwnScope(t *testing.T, runs []run) {
	t.Helper()
	for _, x := range runs {
		want, _ := tenants.SchemaName(x.Tenant)
		if x.Schema != want || x.Emails != "probe@"+x.Tenant+".test" {
			t.Errorf("task of %s ran in schema %q seeing users %q", x.Tenant, x.Schema, x.Emails)
		}
	}
}

func payloadFor(t *testing.T, raw string) (string, int) {
	t.Helper()
	var p struct {
		For string `json:"for"`
		N   int    `json:"n"`
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatalf("payload %q: %v", raw, err)
	}
	return p.For, p.N
}

// idle waits until the deployment's queues hold nothing left to run
// (pending, active, scheduled or retrying), as Asynq's inspector reports:
// from then on no further run can happen, so counting runs is final.
func idle(t *testing.T, env *apptest.Env) {
	t.Helper()
	ins := inspector(t, env)
	apptest.Eventually(t, 10*time.Second, "the queues drained", func() bool {
		used, err := ins.Queues() // every deployment's: keep ours
		if err != nil {
			return false
		}
		for _, q := range used {
			if _, ours := env.App.Jobs.ServerQueues()[q]; !ours {
				continue
			}
			info, err := ins.GetQueueInfo(q)
			if err != nil || info.Pending+info.Active+info.Scheduled+info.Retry > 0 {
				return false
			}
		}
		return true
	})
}

// avoidBucketEdge waits out the end of the current bucket (wall-clock time
// the fan-out's bucket is derived from) when it is within margin.
func avoidBucketEdge(t *testing.T, bucket, margin time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	if left := now.Truncate(bucket).Add(bucket).Sub(now); left < margin {
		t.Logf("waiting %v for the next bucket", left)
		time.Sleep(left + 100*time.Millisecond) // not synchronisation: the real scheduler buckets by the wall clock
	}
}
