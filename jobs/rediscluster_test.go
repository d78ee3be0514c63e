package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/jobs"
)

// Jobs on a three-node Redis Cluster (asynq.RedisClusterClientOpt): tasks
// enqueued run in their tenant, a task id still deduplicates, a delayed task
// is forwarded when due, a failing task is retried and visible to the
// inspector, and the real scheduler's fan-out runs once per tenant and
// bucket.
func TestJobsOnRedisCluster(t *testing.T) {
	cluster := apptest.RedisCluster(t)
	rec := &recorder{}
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{&probe{rec: rec, periodic: &jobs.Periodic{
		Cron: "@every 1s", Type: probeType, Queue: jobs.QueueDefault, Bucket: time.Hour,
	}}}, Configure: apptest.OnRedisCluster(cluster)})
	if _, ok := env.App.AsynqRedis().(asynq.RedisClusterClientOpt); !ok {
		t.Fatalf("Asynq reaches Redis through %T, want RedisClusterClientOpt", env.App.AsynqRedis())
	}
	ctx := context.Background()
	a, b, off := tenant(t, env, "cljob"), tenant(t, env, "cljob"), tenant(t, env, "cljob")
	if err := env.App.Tenants.Suspend(ctx, off.Slug); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, a, probeType, map[string]string{"n": "now"}, asynq.TaskID("now-"+a.Slug)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, a, probeType, map[string]string{"n": "again"}, asynq.TaskID("now-"+a.Slug)); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Fatalf("a second task with the same id: %v, want ErrTaskIDConflict", err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, b, probeType, map[string]string{"n": "later"}, asynq.ProcessIn(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.Jobs.Enqueue(ctx, b, probeType, map[string]bool{"fail": true}, asynq.TaskID("fails"), asynq.MaxRetry(3)); err != nil {
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
	apptest.Eventually(t, 15*time.Second, "three fan-outs", func() bool { return jobsTotal(t, env, jobs.FanoutType, "ok") >= 3 })
	sched.Shutdown()
	// a: its task and one fan-out run; b: the delayed task and one fan-out.
	apptest.Eventually(t, 15*time.Second, "tasks handled", func() bool { return rec.count(a.Slug) >= 2 && rec.count(b.Slug) >= 2 })
	ins := inspector(t, env)
	queue := env.App.Jobs.Queue(jobs.QueueDefault)
	apptest.Eventually(t, 15*time.Second, "the failing task waits for its retry", func() bool {
		info, err := ins.GetTaskInfo(queue, "fails")
		return err == nil && info.Retried >= 1 && info.LastErr != ""
	})
	if err := ins.DeleteTask(queue, "fails"); err != nil {
		t.Fatal(err)
	}
	idle(t, env)
	if rec.count(a.Slug) != 2 || rec.count(b.Slug) != 2 || rec.count(off.Slug) != 0 {
		t.Fatalf("runs %+v: want two each for %s and %s (one task, one fan-out), none for suspended %s", rec.all(), a.Slug, b.Slug, off.Slug)
	}
	if errs := jobsTotal(t, env, jobs.FanoutType, "error"); errs != 0 {
		t.Fatalf("%v fan-outs failed", errs)
	}
	checkOwnScope(t, rec.all())
}
