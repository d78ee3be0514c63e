// Package jobs runs the platform's background work on Asynq: a task envelope
// that always carries its tenant, handlers that run for that tenant only,
// and periodic work that fans out into one task per active tenant.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"marquee/tenants"
)

// Queues, by priority. Polling bursts and rollups never delay hold expiry.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueuePolling  = "polling"
	QueueRollups  = "rollups"
)

// Queues is the weighted queue set every worker serves.
var Queues = map[string]int{QueueCritical: 6, QueueDefault: 3, QueuePolling: 1, QueueRollups: 1}

// FanoutType is the periodic task that spawns one task per active tenant.
const FanoutType = "platform:fanout"

// Handler runs one task for one tenant. It must be idempotent.
type Handler func(ctx context.Context, t tenants.Tenant, payload []byte) error

// Envelope is the payload of every tenant task.
type Envelope struct {
	Tenant  string          `json:"tenant"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Periodic is work run for every active tenant on a schedule.
type Periodic struct {
	Cron   string        // when the fan-out runs, in cron syntax (UTC)
	Type   string        // the tenant task type it spawns
	Queue  string        // where the tenant tasks go
	Bucket time.Duration // the period: one task per tenant per bucket, whatever the retries
}

// Jobs is the registry of task handlers and schedules plus the client that
// enqueues tasks.
type Jobs struct {
	redis    asynq.RedisConnOpt
	client   *asynq.Client
	registry *tenants.Registry
	log      *slog.Logger
	handlers map[string]Handler
	// prefix names this deployment's queues in Redis ("<deployment>:"), so
	// deployments sharing a Redis never run each other's tasks.
	prefix string
	// settling names the task types that still run for a suspended tenant.
	settling map[string]bool
	periodic []Periodic
	runs     *prometheus.CounterVec
}

// New builds the job registry.
func New(redis asynq.RedisConnOpt, deployment string, registry *tenants.Registry, log *slog.Logger, metrics prometheus.Registerer) *Jobs {
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marquee_jobs_total", Help: "Tasks processed, by type and outcome.",
	}, []string{"type", "outcome"})
	if metrics != nil {
		metrics.MustRegister(runs)
	}
	return &Jobs{
		redis: redis, client: asynq.NewClient(redis), registry: registry, log: log, prefix: deployment + ":",
		handlers: map[string]Handler{}, settling: map[string]bool{}, runs: runs,
	}
}

// Queue is the name in Redis of one of the platform's queues (QueueCritical,
// …) for this deployment: what Asynq's inspector and monitor show.
func (j *Jobs) Queue(name string) string { return j.prefix + name }

// ServerQueues is the weighted queue set, by the names this deployment's
// workers serve.
func (j *Jobs) ServerQueues() map[string]int {
	qs := make(map[string]int, len(Queues))
	for name, weight := range Queues {
		qs[j.Queue(name)] = weight
	}
	return qs
}

// scoped puts a task on this deployment's copy of its queue (the default
// queue when none is named).
func (j *Jobs) scoped(opts []asynq.Option) []asynq.Option {
	out := make([]asynq.Option, 0, len(opts)+1)
	named := false
	for _, o := range opts {
		if o.Type() == asynq.QueueOpt {
			named = true
			o = asynq.Queue(j.Queue(o.Value().(string)))
		}
		out = append(out, o)
	}
	if !named {
		out = append(out, asynq.Queue(j.Queue(QueueDefault)))
	}
	return out
}

// Close releases the client.
func (j *Jobs) Close() error { return j.client.Close() }

// Handle registers the handler of a tenant task type.
func (j *Jobs) Handle(taskType string, h Handler) {
	if _, dup := j.handlers[taskType]; dup || taskType == FanoutType {
		panic(fmt.Sprintf("jobs: task type %q registered twice", taskType))
	}
	j.handlers[taskType] = h
}

// HandleEvenWhenSuspended registers a task that settles what was already
// started (hold expiry, refunds, cancellations): suspension stops a tenant's
// new business, never the return of seats or money it already took.
func (j *Jobs) HandleEvenWhenSuspended(taskType string, h Handler) {
	j.Handle(taskType, h)
	j.settling[taskType] = true
}

// Every schedules a registered task type for every active tenant.
func (j *Jobs) Every(p Periodic) {
	if p.Queue == "" {
		p.Queue = QueueDefault
	}
	if p.Bucket <= 0 {
		p.Bucket = time.Minute
	}
	j.periodic = append(j.periodic, p)
}

// Periodics returns the registered schedules.
func (j *Jobs) Periodics() []Periodic { return slices.Clone(j.periodic) }

// Enqueue queues a task for a tenant. Give it asynq.TaskID to make it unique.
func (j *Jobs) Enqueue(ctx context.Context, t tenants.Tenant, taskType string, payload any, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	if _, ok := j.handlers[taskType]; !ok {
		return nil, fmt.Errorf("jobs: no handler for %q", taskType)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	env, err := json.Marshal(Envelope{Tenant: t.Slug, Payload: raw})
	if err != nil {
		return nil, err
	}
	return j.client.EnqueueContext(ctx, asynq.NewTask(taskType, env), j.scoped(opts)...)
}

// Mux returns the Asynq handler: every tenant task is decoded, its tenant
// resolved and checked, then passed to its handler.
func (j *Jobs) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	for taskType, h := range j.handlers {
		mux.HandleFunc(taskType, j.tenantTask(taskType, h))
	}
	mux.HandleFunc(FanoutType, j.fanout)
	return mux
}

func (j *Jobs) tenantTask(taskType string, h Handler) asynq.HandlerFunc {
	return func(ctx context.Context, task *asynq.Task) (err error) {
		defer func() { j.count(taskType, err) }()
		var env Envelope
		if err := json.Unmarshal(task.Payload(), &env); err != nil {
			return fmt.Errorf("%w: bad envelope: %v", asynq.SkipRetry, err)
		}
		t, err := j.registry.Active(ctx, env.Tenant)
		switch {
		case errors.Is(err, tenants.ErrMoving):
			// Even settling work waits: nothing may write while the schema
			// is copied. It runs again, on the tenant's new server, shortly.
			return &RetryIn{After: 20 * time.Second, Err: fmt.Errorf("tenant %s is moving", env.Tenant)}
		case stopped(t, err) && j.settling[taskType]:
			// Seats and money owed still go back while a chain is
			// suspended or waiting out its deletion delay.
		case stopped(t, err):
			// Kept in the archive, visible, and retryable once the tenant is
			// resumed (or its deletion cancelled); retried, it would fail
			// over and over for as long as the chain stays stopped.
			return fmt.Errorf("%w: tenant %s is %s", asynq.SkipRetry, env.Tenant, t.Status)
		case err != nil && t.Status == tenants.StatusDeleted,
			errors.Is(err, tenants.ErrNotFound), errors.Is(err, tenants.ErrInvalidSlug):
			// Nothing can ever run it (the tenant was deleted, or the task
			// came from elsewhere): dropped, not failed and retried.
			j.log.Warn("task for an unknown tenant dropped", "type", taskType, "tenant", env.Tenant)
			return nil
		case err != nil:
			return err
		}
		return h(ctx, t, env.Payload)
	}
}

// stopped says whether a tenant lookup found a chain that is not served
// for now but may be again: suspended, or deleting (cancellable).
func stopped(t tenants.Tenant, err error) bool {
	return errors.Is(err, tenants.ErrSuspended) || (err != nil && t.Status == tenants.StatusDeleting)
}

func (j *Jobs) count(taskType string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	j.runs.WithLabelValues(taskType, outcome).Inc()
}

type fanoutPayload struct {
	Type   string `json:"type"`
	Queue  string `json:"queue"`
	Bucket int64  `json:"bucket_seconds"`
}

// fanout spawns one task per active tenant. Task ids are bucketed by time, so
// running the same fan-out twice in a bucket enqueues nothing new.
func (j *Jobs) fanout(ctx context.Context, task *asynq.Task) (err error) {
	defer func() { j.count(FanoutType, err) }()
	var p fanoutPayload
	if err := json.Unmarshal(task.Payload(), &p); err != nil || p.Bucket <= 0 {
		return fmt.Errorf("%w: bad fan-out payload", asynq.SkipRetry)
	}
	_, err = j.FanOut(ctx, p.Type, p.Queue, time.Duration(p.Bucket)*time.Second, time.Now())
	return err
}

// FanOut enqueues taskType once per active tenant for the time bucket that
// holds now, and returns how many tasks were newly enqueued.
func (j *Jobs) FanOut(ctx context.Context, taskType, queue string, bucket time.Duration, now time.Time) (int, error) {
	active, err := j.registry.ListActive(ctx)
	if err != nil {
		return 0, err
	}
	start := now.UTC().Truncate(bucket).Unix()
	n := 0
	var errs []error
	for _, t := range active {
		id := fmt.Sprintf("%s:%s:%d", taskType, t.Slug, start)
		_, err := j.Enqueue(ctx, t, taskType, struct {
			BucketStart int64 `json:"bucket_start"`
		}{start}, asynq.TaskID(id), asynq.Queue(queue), asynq.Retention(bucket))
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict):
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", t.Slug, err))
		default:
			n++
		}
	}
	return n, errors.Join(errs...)
}

// RetryIn is a handler's error asking for its task to run again after
// After, rather than after the usual backoff (15 s and growing): work that
// is not due yet, whose due time the handler knows.
type RetryIn struct {
	After time.Duration
	Err   error
}

func (e *RetryIn) Error() string { return fmt.Sprintf("%v (retry in %v)", e.Err, e.After) }
func (e *RetryIn) Unwrap() error { return e.Err }

// DueAt is the time to give asynq.ProcessAt for work due at t. Asynq keeps
// whole seconds and drops the fraction, which would start the task up to a
// second early; this rounds up instead.
func DueAt(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// retryDelay honours RetryIn; anything else backs off as Asynq does. The
// retry time is kept in whole seconds too (dropping the fraction), hence
// the extra second: never early, at most a second late.
func retryDelay(n int, err error, task *asynq.Task) time.Duration {
	var r *RetryIn
	if errors.As(err, &r) {
		return max(r.After, 0) + time.Second
	}
	return asynq.DefaultRetryDelayFunc(n, err, task)
}

// NewServer builds the Asynq worker server.
func (j *Jobs) NewServer(concurrency int) *asynq.Server {
	return asynq.NewServer(j.redis, asynq.Config{
		Concurrency:     concurrency,
		Queues:          j.ServerQueues(),
		ShutdownTimeout: 15 * time.Second,
		// Hold expiry is scheduled at the second and must return seats within
		// about a second of it: a due task waits for the forwarder (which
		// moves it to its queue) and then for an idle worker's next look at
		// the queues. Asynq's defaults (5 s and 1 s) made that up to 6.5 s;
		// these make it under a second, for a few cheap Redis calls a second.
		DelayedTaskCheckInterval: 500 * time.Millisecond,
		TaskCheckInterval:        200 * time.Millisecond,
		RetryDelayFunc:           retryDelay,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, task *asynq.Task, err error) {
			j.log.Warn("task failed", "type", task.Type(), "err", err)
		}),
		Logger:   asynqLogger{j.log},
		LogLevel: asynq.WarnLevel,
	})
}

// NewScheduler builds the scheduler of the periodic fan-outs. Run exactly one
// per deployment: every running scheduler enqueues.
func (j *Jobs) NewScheduler() (*asynq.Scheduler, error) {
	s := asynq.NewScheduler(j.redis, &asynq.SchedulerOpts{Location: time.UTC, Logger: asynqLogger{j.log}, LogLevel: asynq.WarnLevel})
	for _, p := range j.periodic {
		// A schedule that cannot fan out would fail (and retry) forever:
		// refuse it at start instead.
		if _, ok := j.handlers[p.Type]; !ok {
			return nil, fmt.Errorf("schedule %s: no handler registered for it", p.Type)
		}
		if p.Bucket < time.Second || p.Bucket%time.Second != 0 {
			return nil, fmt.Errorf("schedule %s: bucket %v must be a whole number of seconds", p.Type, p.Bucket)
		}
		payload, err := json.Marshal(fanoutPayload{Type: p.Type, Queue: p.Queue, Bucket: int64(p.Bucket / time.Second)})
		if err != nil {
			return nil, err
		}
		if _, err := s.Register(p.Cron, asynq.NewTask(FanoutType, payload), asynq.Queue(j.Queue(QueueCritical))); err != nil {
			return nil, fmt.Errorf("schedule %s: %w", p.Type, err)
		}
	}
	return s, nil
}

// asynqLogger sends Asynq's own logs to the structured log.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
