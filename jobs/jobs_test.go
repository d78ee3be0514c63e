package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/jobs"
	"marquee/tenants"
)

// TestTasksRunInTheirTenant: tasks of two tenants, interleaved on one queue
// and run by four workers, each run for their own tenant, inside its schema,
// seeing only its rows.
func TestTasksRunInTheirTenant(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	ctx := context.Background()
	ts := []tenants.Tenant{tenant(t, env, "jobs"), tenant(t, env, "jobs")}
	const perTenant = 15
	for i := range perTenant {
		for _, tn := range ts {
			if _, err := env.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug, "n": i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := env.App.Jobs.Enqueue(ctx, ts[0], "test:unregistered", nil); err == nil {
		t.Fatal("Enqueue accepted a task type without handler")
	}
	serve(t, env)
	apptest.Eventually(t, 10*time.Second, "all tasks handled", func() bool { return len(rec.all()) >= 2*perTenant })
	idle(t, env)
	runs := rec.all()
	if len(runs) != 2*perTenant {
		t.Fatalf("%d runs, want %d", len(runs), 2*perTenant)
	}
	checkOwnScope(t, runs)
	seen := map[string]bool{}
	for _, x := range runs {
		owner, n := payloadFor(t, x.Payload)
		if owner != x.Tenant {
			t.Errorf("task addressed to %s ran for %s", owner, x.Tenant)
		}
		key := fmt.Sprintf("%s/%d", owner, n)
		if seen[key] {
			t.Errorf("task %s ran twice", key)
		}
		seen[key] = true
	}
}

// TestFanOut: one task per active tenant per bucket, whatever how often the
// fan-out runs in that bucket, before or after the tasks were processed.
func TestFanOut(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	ctx := context.Background()
	a, b, off := tenant(t, env, "fan"), tenant(t, env, "fan"), tenant(t, env, "fan")
	if err := env.App.Tenants.Suspend(ctx, off.Slug); err != nil {
		t.Fatal(err)
	}
	active, err := env.App.Tenants.ListActive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var slugs []string
	for _, tn := range active {
		slugs = append(slugs, tn.Slug)
	}
	slices.Sort(slugs)
	if want := []string{a.Slug, b.Slug}; !slices.Equal(slugs, want) {
		t.Fatalf("active tenants %v, want %v (earlier tests left tenants active)", slugs, want)
	}

	now := time.Now()
	n, err := env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now)
	if err != nil || n != 2 {
		t.Fatalf("first fan-out enqueued %d (%v), want 2", n, err)
	}
	n, err = env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now.Add(time.Second))
	if err != nil || n != 0 {
		t.Fatalf("second fan-out in the same bucket enqueued %d (%v), want 0", n, err)
	}
	serve(t, env)
	apptest.Eventually(t, 10*time.Second, "fan-out tasks handled", func() bool { return len(rec.all()) >= 2 })
	ins := inspector(t, env)
	apptest.Eventually(t, 5*time.Second, "tasks completed", func() bool {
		done, _ := ins.ListCompletedTasks(env.App.Jobs.Queue(jobs.QueueDefault))
		return len(done) == 2
	})
	// After completion, the retained task ids still dedupe the bucket.
	n, err = env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now.Add(2*time.Second))
	if err != nil || n != 0 {
		t.Fatalf("fan-out after processing, same bucket, enqueued %d (%v), want 0", n, err)
	}
	idle(t, env)
	if rec.count(a.Slug) != 1 || rec.count(b.Slug) != 1 || rec.count(off.Slug) != 0 || len(rec.all()) != 2 {
		t.Fatalf("runs %+v: want one for %s, one for %s, none for suspended %s", rec.all(), a.Slug, b.Slug, off.Slug)
	}
	checkOwnScope(t, rec.all())
	// The next bucket gets its own tasks.
	n, err = env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("fan-out in the next bucket enqueued %d (%v), want 2", n, err)
	}
	apptest.Eventually(t, 10*time.Second, "next bucket handled", func() bool { return len(rec.all()) >= 4 })
	idle(t, env)
	if rec.count(a.Slug) != 2 || rec.count(b.Slug) != 2 || rec.count(off.Slug) != 0 {
		t.Fatalf("after two buckets: %+v", rec.all())
	}
}

// TestSuspendedTenantTaskArchived: a task whose tenant is suspended before
// it runs is archived at once (not retried, handler never called), visible,
// and runs once the tenant is resumed and the task is run again. A task for
// an unknown tenant can never run: it is dropped with a log line.
func TestSuspendedTenantTaskArchived(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	ctx := context.Background()
	tn := tenant(t, env, "susp")
	id := "probe-" + tn.Slug
	if _, err := env.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug}, asynq.TaskID(id), asynq.MaxRetry(5)); err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(redisOpt(t, env))
	defer client.Close()
	// On this deployment's queue, which its workers serve (Asynq's own
	// "default" queue would be shared by every test package).
	queue := env.App.Jobs.Queue(jobs.QueueDefault)
	if _, err := client.Enqueue(asynq.NewTask(probeType, []byte(`{"tenant":"ghost-tenant"}`)), asynq.TaskID("ghost"), asynq.MaxRetry(5), asynq.Queue(queue)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Enqueue(asynq.NewTask(probeType, []byte(`{"tenant":"x'; drop schema public;--"}`)), asynq.TaskID("evil"), asynq.MaxRetry(5), asynq.Queue(queue)); err != nil {
		t.Fatal(err)
	}
	if err := env.App.Tenants.Suspend(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	serve(t, env)
	ins := inspector(t, env)
	var archived []*asynq.TaskInfo
	// The suspended tenant's task is archived; the unknown tenants' are
	// dropped (done, gone from the queue) without ever being retried.
	apptest.Eventually(t, 10*time.Second, "tasks archived or dropped", func() bool {
		archived, _ = ins.ListArchivedTasks(queue)
		_, ghostErr := ins.GetTaskInfo(queue, "ghost")
		_, evilErr := ins.GetTaskInfo(queue, "evil")
		return len(archived) == 1 && errors.Is(ghostErr, asynq.ErrTaskNotFound) && errors.Is(evilErr, asynq.ErrTaskNotFound)
	})
	if info := archived[0]; info.ID != id || info.Retried != 0 || !strings.Contains(info.LastErr, "suspended") {
		t.Errorf("archived %s (retried %d, error %q), want %s archived at once as suspended", info.ID, info.Retried, info.LastErr, id)
	}
	if len(rec.all()) != 0 {
		t.Fatalf("handler ran for a suspended or unknown tenant: %+v", rec.all())
	}
	// Resumed, the archived task can be run and then runs for its tenant.
	if err := env.App.Tenants.Resume(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	if err := ins.RunTask(env.App.Jobs.Queue(jobs.QueueDefault), id); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, 10*time.Second, "resumed task handled", func() bool { return rec.count(tn.Slug) == 1 })
	checkOwnScope(t, rec.all())
}

// A task that settles started work (returning seats or money) runs for a
// suspended tenant, while its ordinary tasks are archived.
func TestSettlingTasksRunWhileSuspended(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	ctx := context.Background()
	tn := tenant(t, env, "settle")
	if err := env.App.Tenants.Suspend(ctx, tn.Slug); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug, "n": 1}, asynq.TaskID("ordinary-"+tn.Slug)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, tn, settleType, map[string]any{"for": tn.Slug, "n": 2}); err != nil {
		t.Fatal(err)
	}
	serve(t, env)
	ins := inspector(t, env)
	apptest.Eventually(t, 10*time.Second, "settling task run and ordinary one archived", func() bool {
		archived, _ := ins.ListArchivedTasks(env.App.Jobs.Queue(jobs.QueueDefault))
		return rec.count(tn.Slug) == 1 && len(archived) == 1
	})
	if _, n := payloadFor(t, rec.all()[0].Payload); n != 2 {
		t.Fatalf("ran task %d for the suspended tenant, want the settling one", n)
	}
	checkOwnScope(t, rec.all())
}

// The fan-out at fleet scale: one turn over 1,000 active chains enqueues
// exactly one task each, and a second turn in the same bucket none. The
// chains are registry rows only (the fan-out reads nothing else), removed
// at the end so the package's other tests see only their own. The time is
// logged, not asserted: `marquee bench fleet` prints it per fleet size.
func TestFanOutThousandTenants(t *testing.T) {
	env := start(t, &probe{rec: &recorder{}})
	ctx := context.Background()
	const fleet = 1000
	prefix := apptest.UniqueSlug("fleet")
	if err := env.App.DB.Exec(`INSERT INTO control.tenants (id, slug, name, schema_name, status)
		SELECT gen_random_uuid(), ? || '-' || i, 'Fleet ' || i, 't_' || replace(?, '-', '_') || '_' || i, 'active'
		FROM generate_series(1, ?) i`, prefix, prefix, fleet).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.App.DB.Exec(`DELETE FROM control.tenants WHERE slug LIKE ? || '-%'`, prefix).Error
	})
	active, err := env.App.Tenants.ListActive(ctx)
	if err != nil || len(active) != fleet {
		t.Fatalf("%d active tenants (%v), want %d (earlier tests left tenants active)", len(active), err, fleet)
	}
	now := time.Now()
	began := time.Now()
	n, err := env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now)
	took := time.Since(began)
	if err != nil || n != fleet {
		t.Fatalf("fan-out over %d chains enqueued %d (%v)", fleet, n, err)
	}
	t.Logf("fan-out over %d chains enqueued %d tasks in %v", fleet, n, took.Round(time.Millisecond))
	ins := inspector(t, env)
	info, err := ins.GetQueueInfo(env.App.Jobs.Queue(jobs.QueueDefault))
	if err != nil || info.Pending != fleet {
		t.Fatalf("queue holds %+v (%v), want %d pending", info, err, fleet)
	}
	if n, err := env.App.Jobs.FanOut(ctx, probeType, jobs.QueueDefault, time.Hour, now.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("second fan-out in the bucket enqueued %d (%v), want 0", n, err)
	}
}

// A task reaches its chain on the server the registry places it on: with
// one chain on each of two PostgreSQL servers, each task's transaction ran
// on its chain's server, in its schema, seeing only its users.
func TestTasksRunOnTheirChainsServer(t *testing.T) {
	rec := &recorder{}
	second := apptest.SecondDatabase(t, "jobs_"+strings.ToLower(t.Name()))
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{&probe{rec: rec}}, Configure: func(c *config.Config) {
		c.DatabaseServers = map[string]string{apptest.SecondServer: second}
	}})
	if err := apptest.ClearRedis(context.Background(), env.App.Config.Deployment()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	port := func(url string) string {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(int(cfg.Port))
	}
	want := map[string]string{}
	for _, server := range []string{tenants.DefaultServer, apptest.SecondServer} {
		tn, err := env.App.Tenants.CreateOn(ctx, apptest.UniqueSlug("placed"), "", server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = env.App.Tenants.Suspend(context.Background(), tn.Slug) })
		if _, err := env.App.CreateUser(ctx, tn, "probe@"+tn.Slug+".test", "Probe", apptest.Password); err != nil {
			t.Fatal(err)
		}
		want[tn.Slug] = port(apptest.DatabaseURL())
		if server == apptest.SecondServer {
			want[tn.Slug] = port(second)
		}
		if _, err := env.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug}); err != nil {
			t.Fatal(err)
		}
	}
	serve(t, env)
	apptest.Eventually(t, 10*time.Second, "both tasks handled", func() bool { return len(rec.all()) == 2 })
	for _, x := range rec.all() {
		if x.Port != want[x.Tenant] {
			t.Errorf("task of %s ran on the server at port %s, want %s", x.Tenant, x.Port, want[x.Tenant])
		}
	}
	checkOwnScope(t, rec.all())
}

// A chain waiting out its deletion delay is stopped like a suspended one:
// its ordinary tasks are archived at once (retryable if the deletion is
// cancelled), its settling tasks still run; once deleted, its tasks are
// dropped, never retried.
func TestDeletingTenantTasks(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	ctx := context.Background()
	who := tenants.Change{Actor: "support@test", Reason: "the chain asked"}
	deleting := tenant(t, env, "deleting")
	if _, err := env.App.Tenants.RequestDeletion(ctx, deleting.Slug, tenants.MinDeletionDelay, who); err != nil {
		t.Fatal(err)
	}
	deleted := tenant(t, env, "deleted")
	if _, err := env.App.Tenants.RequestDeletion(ctx, deleted.Slug, tenants.MinDeletionDelay, who); err != nil {
		t.Fatal(err)
	}
	if err := env.App.DB.Exec("UPDATE control.tenants SET delete_after = now() - interval '1 minute' WHERE slug = ?", deleted.Slug).Error; err != nil {
		t.Fatal(err)
	}
	if err := env.App.CompleteTenantDeletion(ctx, deleted.Slug, who); err != nil {
		t.Fatal(err)
	}
	queue := env.App.Jobs.Queue(jobs.QueueDefault)
	for _, task := range []struct {
		tn  tenants.Tenant
		typ string
		id  string
	}{
		{deleting, probeType, "ordinary-deleting"},
		{deleting, settleType, "settling-deleting"},
		{deleted, probeType, "ordinary-deleted"},
		{deleted, settleType, "settling-deleted"},
	} {
		if _, err := env.App.Jobs.Enqueue(ctx, task.tn, task.typ, map[string]any{"for": task.tn.Slug}, asynq.TaskID(task.id), asynq.MaxRetry(5)); err != nil {
			t.Fatal(err)
		}
	}
	serve(t, env)
	ins := inspector(t, env)
	var archived []*asynq.TaskInfo
	apptest.Eventually(t, 10*time.Second, "deleting chain's tasks archived or run, deleted chain's dropped", func() bool {
		archived, _ = ins.ListArchivedTasks(queue)
		gone := 0
		for _, id := range []string{"settling-deleting", "ordinary-deleted", "settling-deleted"} {
			if _, err := ins.GetTaskInfo(queue, id); errors.Is(err, asynq.ErrTaskNotFound) {
				gone++
			}
		}
		return len(archived) == 1 && gone == 3
	})
	if info := archived[0]; info.ID != "ordinary-deleting" || info.Retried != 0 || !strings.Contains(info.LastErr, "deleting") {
		t.Errorf("archived %s (retried %d, error %q), want ordinary-deleting archived at once as deleting", info.ID, info.Retried, info.LastErr)
	}
	if rec.count(deleting.Slug) != 1 || rec.count(deleted.Slug) != 0 {
		t.Fatalf("handled %d tasks of the deleting chain (want its settling one) and %d of the deleted one (want none)", rec.count(deleting.Slug), rec.count(deleted.Slug))
	}
	checkOwnScope(t, rec.all())
}

// TestPeriodicFansOutOncePerBucket: a schedule firing every second with an
// hour bucket, run for a few seconds by the real scheduler and worker, runs
// the task exactly once per active tenant and never for a suspended one.
func TestPeriodicFansOutOncePerBucket(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec, periodic: &jobs.Periodic{
		Cron: "@every 1s", Type: probeType, Queue: jobs.QueueDefault, Bucket: time.Hour,
	}})
	ctx := context.Background()
	a, b, off := tenant(t, env, "per"), tenant(t, env, "per"), tenant(t, env, "per")
	if err := env.App.Tenants.Suspend(ctx, off.Slug); err != nil {
		t.Fatal(err)
	}
	avoidBucketEdge(t, time.Hour, 10*time.Second)
	serve(t, env)
	sched, err := env.App.Jobs.NewScheduler()
	if err != nil {
		t.Fatal(err)
	}
	if err := sched.Start(); err != nil {
		t.Fatal(err)
	}
	// The schedule fires every second: let the fan-out run three times.
	apptest.Eventually(t, 10*time.Second, "three fan-outs", func() bool { return jobsTotal(t, env, jobs.FanoutType, "ok") >= 3 })
	sched.Shutdown()
	apptest.Eventually(t, 10*time.Second, "periodic tasks handled", func() bool { return rec.count(a.Slug) >= 1 && rec.count(b.Slug) >= 1 })
	idle(t, env)
	fanouts := jobsTotal(t, env, jobs.FanoutType, "ok")
	if fanouts < 2 {
		t.Fatalf("the fan-out ran %v times, want at least 2 (nothing was deduplicated)", fanouts)
	}
	if rec.count(a.Slug) != 1 || rec.count(b.Slug) != 1 || rec.count(off.Slug) != 0 {
		t.Fatalf("after %v fan-outs: %+v; want exactly one run for %s and %s, none for %s", fanouts, rec.all(), a.Slug, b.Slug, off.Slug)
	}
	if errs := jobsTotal(t, env, jobs.FanoutType, "error"); errs != 0 {
		t.Fatalf("%v fan-outs failed", errs)
	}
	checkOwnScope(t, rec.all())
}

// jobsTotal reads marquee_jobs_total{type,outcome} from the App's metrics.
func jobsTotal(t *testing.T, env *apptest.Env, typ, outcome string) float64 {
	t.Helper()
	families, err := env.App.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "marquee_jobs_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestFailedTaskRetriesVisibly: a handler error is retried with backoff, and
// the task, its retry count and its error are visible meanwhile.
func TestFailedTaskRetriesVisibly(t *testing.T) {
	rec := &recorder{}
	env := start(t, &probe{rec: rec})
	tn := tenant(t, env, "retry")
	id := "fail-" + tn.Slug
	if _, err := env.App.Jobs.Enqueue(context.Background(), tn, probeType, map[string]any{"fail": true}, asynq.TaskID(id), asynq.MaxRetry(3)); err != nil {
		t.Fatal(err)
	}
	serve(t, env)
	ins := inspector(t, env)
	var info *asynq.TaskInfo
	apptest.Eventually(t, 10*time.Second, "task waiting for retry", func() bool {
		info, _ = ins.GetTaskInfo(env.App.Jobs.Queue(jobs.QueueDefault), id)
		return info != nil && info.State == asynq.TaskStateRetry
	})
	if info.Retried != 1 || !strings.Contains(info.LastErr, "probe failure on request") || !info.NextProcessAt.After(time.Now()) {
		t.Fatalf("retry state: retried %d, last error %q, next at %v", info.Retried, info.LastErr, info.NextProcessAt)
	}
	if jobsTotal(t, env, probeType, "error") != 1 {
		t.Fatalf("failure not counted: %v", jobsTotal(t, env, probeType, "error"))
	}
}

// TestSchedulerRejectsBrokenSchedules: a schedule of an unregistered type or
// with a bucket the fan-out cannot carry (whole seconds) fails at start
// rather than failing every run.
func TestSchedulerRejectsBrokenSchedules(t *testing.T) {
	opt := redisOpt(t, start(t, &probe{rec: &recorder{}}))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	deployment := apptest.UniqueDeployment(t, "jobs-test")
	for _, p := range []jobs.Periodic{
		{Cron: "@every 1m", Type: "test:nobody"},
		{Cron: "@every 1m", Type: probeType, Bucket: 500 * time.Millisecond},
		{Cron: "@every 1m", Type: probeType, Bucket: 1500 * time.Millisecond},
	} {
		j := jobs.New(opt, deployment, nil, quiet, nil)
		j.Handle(probeType, func(context.Context, tenants.Tenant, []byte) error { return nil })
		j.Every(p)
		if s, err := j.NewScheduler(); err == nil {
			s.Shutdown()
			t.Errorf("NewScheduler accepted %+v", p)
		}
		j.Close()
	}
	j := jobs.New(opt, deployment, nil, quiet, nil)
	defer j.Close()
	j.Handle(probeType, func(context.Context, tenants.Tenant, []byte) error { return nil })
	j.Every(jobs.Periodic{Cron: "@every 1m", Type: probeType}) // default bucket: a minute
	s, err := j.NewScheduler()
	if err != nil {
		t.Fatalf("valid schedule refused: %v", err)
	}
	s.Shutdown()
}

// DueAt rounds up to the whole second Asynq keeps, so a task scheduled with
// it never starts before its time.
func TestDueAtNeverEarly(t *testing.T) {
	base := time.Date(2030, 5, 1, 12, 0, 7, 0, time.UTC)
	for _, tc := range []struct{ in, want time.Time }{
		{base, base},
		{base.Add(time.Microsecond), base.Add(time.Second)},
		{base.Add(999 * time.Millisecond), base.Add(time.Second)},
	} {
		got := jobs.DueAt(tc.in)
		if !got.Equal(tc.want) || got.Unix() < tc.in.Unix() || time.Unix(got.Unix(), 0).Before(tc.in) {
			t.Errorf("DueAt(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// Two deployments sharing one Redis (and here even one database) never run
// each other's tasks: each has its own queues.
func TestDeploymentsSharingRedisKeepTheirTasks(t *testing.T) {
	recA, recB := &recorder{}, &recorder{}
	a := start(t, &probe{rec: recA})
	b := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{&probe{rec: recB}},
		Configure: func(c *config.Config) { c.DeploymentID = apptest.UniqueDeployment(t, "other-deployment") }})
	if a.App.Jobs.Queue(jobs.QueueDefault) == b.App.Jobs.Queue(jobs.QueueDefault) {
		t.Fatalf("both deployments use queue %s", a.App.Jobs.Queue(jobs.QueueDefault))
	}
	ctx := context.Background()
	tn := tenant(t, a, "deploy")
	if _, err := a.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug, "n": 1}, asynq.TaskID("from-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.App.Jobs.Enqueue(ctx, tn, probeType, map[string]any{"for": tn.Slug, "n": 2}); err != nil {
		t.Fatal(err)
	}
	serve(t, b)
	apptest.Eventually(t, 10*time.Second, "the other deployment's own task run", func() bool { return len(recB.all()) == 1 })
	if _, n := payloadFor(t, recB.all()[0].Payload); n != 2 {
		t.Fatalf("the other deployment ran task %d", n)
	}
	info, err := inspector(t, a).GetTaskInfo(a.App.Jobs.Queue(jobs.QueueDefault), "from-a")
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("this deployment's task: %+v %v, want it still pending for its own workers", info, err)
	}
}
