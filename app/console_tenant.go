package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"marquee/jobs"
	"marquee/tenants"
)

// consoleFailedJobs bounds the failed tasks read per queue and state for a
// tenant's page: enough to see and retry what went wrong recently.
const consoleFailedJobs = 500

// FailedJob is a tenant's task that failed: archived (out of retries, or
// skipped) or waiting to retry.
type FailedJob struct {
	// Queue is the queue's name in Redis; QueueName the platform's
	// (critical, default, ...).
	Queue, QueueName, ID, Type, State, Error string
	Retried, MaxRetry                        int
	FailedAt                                 time.Time
}

// FailedJobs reads the tenant's archived and retrying tasks from every
// queue of this deployment (Asynq's inspector), newest failure first.
func (a *App) FailedJobs(ctx context.Context, slug string) ([]FailedJob, error) {
	var out []FailedJob
	queues := make([]string, 0, len(jobs.Queues))
	for q := range a.Jobs.ServerQueues() {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	for _, q := range queues {
		for _, list := range []struct {
			state string
			fn    func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)
		}{{"archived", a.inspector.ListArchivedTasks}, {"retry", a.inspector.ListRetryTasks}} {
			infos, err := list.fn(q, asynq.PageSize(consoleFailedJobs))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, ti := range infos {
				var env jobs.Envelope
				if json.Unmarshal(ti.Payload, &env) != nil || env.Tenant != slug {
					continue
				}
				out = append(out, FailedJob{Queue: q, QueueName: strings.TrimPrefix(q, a.Config.Deployment()+":"), ID: ti.ID, Type: ti.Type, State: list.state, Error: ti.LastErr,
					Retried: ti.Retried, MaxRetry: ti.MaxRetry, FailedAt: ti.LastFailedAt})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FailedAt.After(out[j].FailedAt) })
	return out, nil
}

type supportVisitRow struct {
	At     time.Time `gorm:"column:started_at"`
	Until  time.Time `gorm:"column:expires_at"`
	Email  string    `gorm:"column:email"`
	Reason string    `gorm:"column:reason"`
}

type consoleTenantView struct {
	T              tenants.Tenant
	CSRF           string
	Usage          []UsageFigure
	Panels         []ConsolePanelView
	SchemaBytes    int64
	SchemaSize     string
	Requests, Errs int64
	Version        int64
	Latest         int64
	History        []tenants.StatusEvent
	Moves          []tenants.Move
	Jobs           []FailedJob
	Visits         []supportVisitRow
	Problems       []string
}

// consoleTenant is one tenant's page: usage, status history, placement,
// migration version, failed jobs (with retry) and support visits. A part
// that cannot be read is named on the page rather than failing all of it.
func (a *App) consoleTenant(c *gin.Context) {
	ctx := c.Request.Context()
	t, err := a.Tenants.Lookup(ctx, c.Param("slug"))
	if err != nil {
		Fail(c, NotFound("tenant"))
		return
	}
	v := consoleTenantView{T: t, CSRF: a.CSRFToken(PrincipalOf(c).SessionID.String())}
	problem := func(what string, err error) {
		if err != nil {
			v.Problems = append(v.Problems, what+": "+err.Error())
		}
	}
	// A moving tenant's schema is being copied: its figures are read after.
	if t.Status != tenants.StatusMoving {
		v.Usage, v.SchemaBytes, err = a.TenantUsage(ctx, t)
		problem("usage", err)
		v.Panels = a.TenantPanels(ctx, t)
		if sv, err := a.Servers.For(t); err == nil {
			v.Version, err = a.Migrator.Version(ctx, sv.SQL, t.Schema)
			problem("migration version", err)
		}
	}
	v.SchemaSize = humanBytes(v.SchemaBytes)
	v.Latest, err = a.Migrator.Latest()
	problem("latest migration", err)
	v.Requests, v.Errs, err = a.RequestsLastDay(ctx, t.Slug)
	problem("requests", err)
	v.History, err = a.Tenants.History(ctx, t.ID, 50)
	problem("status history", err)
	v.Moves, err = a.Tenants.Moves(ctx, t, 10)
	problem("moves", err)
	v.Jobs, err = a.FailedJobs(ctx, t.Slug)
	problem("failed jobs", err)
	problem("support visits", a.DB.WithContext(ctx).Raw(`SELECT v.started_at, v.expires_at, u.email, v.reason FROM `+controlSupportVisits+` v
		JOIN `+controlPlatformUsers+` u ON u.id = v.support_user_id WHERE v.tenant_id = ? ORDER BY v.started_at DESC LIMIT 50`, t.ID).Scan(&v.Visits).Error)
	content, err := RenderTemplate(coreTemplates, "console_tenant", v)
	if err != nil {
		Fail(c, err)
		return
	}
	a.writePage(c, http.StatusOK, PageData{Title: t.Name + " (" + t.Slug + ")", Surface: "console", Home: "/console", LogoutPath: "/console/logout",
		CSRF: v.CSRF, Who: a.supportEmail(ctx, PrincipalOf(c).UserID), Flash: trimFlash(c.Query("flash")), Content: content})
}

func trimFlash(f string) string {
	if len(f) > 200 {
		return f[:200]
	}
	return f
}

// consoleRetryJob runs a tenant's failed task again now.
func (a *App) consoleRetryJob(c *gin.Context) {
	ctx, slug := c.Request.Context(), c.Param("slug")
	t, err := a.Tenants.Lookup(ctx, slug)
	if err != nil {
		Fail(c, NotFound("tenant"))
		return
	}
	queue, id := c.PostForm("queue"), c.PostForm("id")
	back := "/console/tenants/" + t.Slug + "?flash="
	// Only a task of this tenant, on one of this deployment's queues.
	if _, ok := a.Jobs.ServerQueues()[queue]; !ok {
		c.Redirect(http.StatusSeeOther, back+urlQueryEscape("No such queue"))
		return
	}
	info, err := a.inspector.GetTaskInfo(queue, id)
	var env jobs.Envelope
	if err != nil || json.Unmarshal(info.Payload, &env) != nil || env.Tenant != t.Slug {
		c.Redirect(http.StatusSeeOther, back+urlQueryEscape("No such failed task of "+t.Slug))
		return
	}
	if err := a.inspector.RunTask(queue, id); err != nil {
		c.Redirect(http.StatusSeeOther, back+urlQueryEscape("Not retried: "+err.Error()))
		return
	}
	a.platformAudit(ctx, a.supportEmail(ctx, PrincipalOf(c).UserID), "tenant.job.retry", &t.ID, info.Type+" "+id)
	c.Redirect(http.StatusSeeOther, back+urlQueryEscape("Task "+info.Type+" queued to run again"))
}

// humanBytes writes a size for people.
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + " " + units[i]
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}
