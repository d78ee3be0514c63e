package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/jobs"
	"marquee/modules"
	"marquee/tenants"
)

// TestConsoleTenantPage: support finds a chain by its owner's e-mail, opens
// its page and sees its server (after a move), usage from the modules,
// schema size, a day's requests, migrations up to date, the status history
// with who and why, its failed job (retried from the page) and the support
// visit — in a real browser.
func TestConsoleTenantPage(t *testing.T) {
	control, drop, err := apptest.Database("main_console")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	second := apptest.SecondDatabase(t, "main_console")
	env := apptest.Start(t, control, apptest.Options{Modules: modules.All(), Configure: func(c *config.Config) {
		c.DatabaseServers = map[string]string{apptest.SecondServer: second}
	}})
	ctx := context.Background()
	if _, err := env.App.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.App.MoveTenant(ctx, "acme", apptest.SecondServer, "ops@marquee.test", "spread the load", tenants.MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	acmeTok := demoLogin(t, env, "acme")
	for range 5 {
		if res := env.Do(t, http.MethodGet, "acme", "/api/v1/venues", acmeTok, nil); res.Status != http.StatusOK {
			t.Fatalf("venues: %d", res.Status)
		}
	}
	// A failed task of acme's (archived) and one of globex's, which acme's
	// page must not show.
	opt, err := asynq.ParseRedisURI(apptest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	client, insp := asynq.NewClient(opt), asynq.NewInspector(opt)
	defer client.Close()
	defer insp.Close()
	queue := env.App.Jobs.Queue(jobs.QueueDefault)
	var acmeTask string
	for _, slug := range []string{"acme", "globex"} {
		payload, _ := json.Marshal(jobs.Envelope{Tenant: slug})
		info, err := client.Enqueue(asynq.NewTask("test:doomed-"+slug, payload), asynq.Queue(queue))
		if err != nil {
			t.Fatal(err)
		}
		if err := insp.ArchiveTask(queue, info.ID); err != nil {
			t.Fatal(err)
		}
		if slug == "acme" {
			acmeTask = info.ID
		}
	}

	b := apptest.Browser(t)
	err = chromedp.Do(b,
		chromedp.Navigate(env.HostURL("")+"/console/login"),
		chromedp.WaitVisible(chromedp.CSS(`#login-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), app.DemoSupportEmail),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), app.DemoPassword),
		chromedp.Submit(chromedp.CSS(`#login-form`)),
		chromedp.WaitVisible(chromedp.CSS(`#tenants`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Suspending asks for confirmation: the test says yes.
	if _, err := chromedp.Run(b, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(b,
		// Suspend acme with a reason (behind its panel), then resume it:
		// both in its history.
		chromedp.Click(chromedp.CSS(`tr[data-slug=acme] details.suspend summary`)),
		chromedp.SendKeys(chromedp.CSS(`tr[data-slug=acme] details.suspend input[name=reason]`), "chargeback review"),
		chromedp.Click(chromedp.CSS(`tr[data-slug=acme] details.suspend button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-slug=acme] form[action$="/resume"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-slug=acme] form[action$="/resume"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-slug=acme] form.visit`)),
		// A support visit, which lands in acme's portal.
		chromedp.SendKeys(chromedp.CSS(`tr[data-slug=acme] form.visit input[name=reason]`), "owner asked for help with tiers"),
		chromedp.Click(chromedp.CSS(`tr[data-slug=acme] form.visit button`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The visit's redirects end in acme's portal before the next page loads
	// (navigating away mid-redirect aborts it).
	apptest.Eventually(t, 15*time.Second, "the support visit lands in acme's portal", func() bool {
		loc, err := chromedp.Run(b, chromedp.Location())
		return err == nil && strings.Contains(loc, "acme.localhost") && !strings.Contains(loc, "/support/enter")
	})
	err = chromedp.Do(b,
		chromedp.WaitReady(chromedp.CSS(`body`)),
		// Search by the owner's e-mail.
		chromedp.Navigate(env.HostURL("")+"/console"),
		chromedp.WaitVisible(chromedp.CSS(`#search`)),
		chromedp.SendKeys(chromedp.CSS(`#search input[name=q]`), "OWNER@GLOBEX"),
		chromedp.Submit(chromedp.CSS(`#search`)),
		chromedp.WaitVisible(chromedp.CSS(`#show-all`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if rows := apptest.Text(t, b, `#tenants tbody`); strings.Contains(rows, "acme") || !strings.Contains(rows, "owner@globex.test") {
		t.Fatalf("search for globex's owner lists: %q", rows)
	}
	apptest.Screenshot(t, b, "console-search")

	err = chromedp.Do(b,
		chromedp.Navigate(env.HostURL("")+"/console/tenants/acme"),
		chromedp.WaitVisible(chromedp.CSS(`#usage`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	page := apptest.Text(t, b, `main`)
	for _, want := range []string{"Venues", "Events", "Tickets sold this month", "up to date", "chargeback review",
		"ops@marquee.test", "spread the load", "default → second", "test:doomed-acme", "owner asked for help with tiers", app.DemoSupportEmail} {
		if !strings.Contains(page, want) {
			t.Errorf("acme's console page lacks %q", want)
		}
	}
	if strings.Contains(page, "test:doomed-globex") {
		t.Error("acme's page shows globex's failed task")
	}
	if s := apptest.Text(t, b, `#server`); s != apptest.SecondServer {
		t.Errorf("server shown: %q", s)
	}
	if r := apptest.Text(t, b, `#requests`); r == "0" || r == "" {
		t.Errorf("requests over the last day: %q", r)
	}
	apptest.Screenshot(t, b, "console-tenant")

	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`tr[data-task="`+acmeTask+`"] button`)), chromedp.WaitVisible(chromedp.CSS(`.flash`))); err != nil {
		t.Fatal(err)
	}
	if f := apptest.Text(t, b, `.flash`); !strings.Contains(f, "queued to run again") {
		t.Fatalf("retry answered %q", f)
	}
	info, err := insp.GetTaskInfo(queue, acmeTask)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("after retry the task is %v (%v), want pending", info, err)
	}
}
