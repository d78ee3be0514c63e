package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/config"
	"marquee/internal/mailcatch"
	"marquee/tenants"
)

func startMail(t *testing.T) (*apptest.Env, *mailcatch.Server) {
	t.Helper()
	catcher, err := mailcatch.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = catcher.Close() })
	env, _ := startProbe(t, func(o *apptest.Options) {
		o.Configure = func(c *config.Config) { c.SMTPURL = catcher.URL() }
	})
	return env, catcher
}

func queueMail(t *testing.T, a *app.App, tn tenants.Tenant, msg app.MailMessage) (uuid.UUID, bool) {
	t.Helper()
	var id uuid.UUID
	var fresh bool
	if err := a.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		var err error
		id, fresh, err = a.Mail.Queue(tx, msg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return id, fresh
}

func mailStatus(t *testing.T, a *app.App, tn tenants.Tenant, id uuid.UUID) app.QueuedMail {
	t.Helper()
	var rows []app.QueuedMail
	if err := a.Tx(context.Background(), tn, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id, status, attempts, last_error, sent_at, message_id FROM mail_outbox WHERE id = ?`, id).Scan(&rows).Error
	}); err != nil || len(rows) != 1 {
		t.Fatalf("read mail %s: %v (%d rows)", id, err, len(rows))
	}
	return rows[0]
}

// A purpose is queued once, and a message sent once, however many senders
// race for it.
func TestMailQueuedOnceSentOnce(t *testing.T) {
	env, catcher := startMail(t)
	tn := env.Tenant(t, apptest.UniqueSlug("mail"))
	msg := app.MailMessage{Key: "test:order-1:tickets", Kind: "test.plain", Ref: "order-1", To: "buyer@example.com", Subject: "Your tickets", Body: "Hello"}
	id, fresh := queueMail(t, env.App, tn, msg)
	again, fresh2 := queueMail(t, env.App, tn, msg)
	if !fresh || fresh2 || again != id {
		t.Fatalf("queue twice: %v %v, %v %v", id, fresh, again, fresh2)
	}
	var wg sync.WaitGroup
	statuses := make(chan string, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := env.App.Mail.Send(context.Background(), tn, id)
			if err != nil {
				t.Error(err)
			}
			statuses <- s
		}()
	}
	wg.Wait()
	close(statuses)
	sent := 0
	for s := range statuses {
		if s == app.MailSent {
			sent++
		}
	}
	if sent != 1 || catcher.Count() != 1 {
		t.Fatalf("%d senders saw it sent, the server got %d messages; want 1 and 1", sent, catcher.Count())
	}
	got := catcher.Messages()[0]
	row := mailStatus(t, env.App, tn, id)
	if got.Subject != "Your tickets" || strings.TrimSpace(got.Text) != "Hello" || row.Status != app.MailSent || row.MessageID == nil || *row.MessageID != got.MessageID {
		t.Fatalf("message %+v, row %+v", got, row)
	}
}

func TestMailBounceAndFailureVisible(t *testing.T) {
	env, catcher := startMail(t)
	tn := env.Tenant(t, apptest.UniqueSlug("mail"))
	ctx := context.Background()

	bounce, _ := queueMail(t, env.App, tn, app.MailMessage{Key: "b", Kind: "test.plain", Ref: "o-b", To: "nobody@bounce.invalid", Subject: "s", Body: "b"})
	if s, err := env.App.Mail.Send(ctx, tn, bounce); err != nil || s != app.MailBounced {
		t.Fatalf("bounce: %q %v", s, err)
	}
	temp, _ := queueMail(t, env.App, tn, app.MailMessage{Key: "t", Kind: "test.plain", Ref: "o-t", To: "later@tempfail.invalid", Subject: "s", Body: "t"})
	for i := 1; i <= 8; i++ {
		// A temporary refusal is retried (the task's error asks for it)
		// until the attempts run out.
		if err := env.App.Tx(ctx, tn, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE mail_outbox SET next_attempt_at = now() WHERE id = ?`, temp).Error
		}); err != nil {
			t.Fatal(err)
		}
		s, err := env.App.Mail.Send(ctx, tn, temp)
		want := app.MailQueued
		if i == 8 {
			want = app.MailFailed
		}
		if s != want || (want == app.MailQueued) != (err != nil) {
			t.Fatalf("attempt %d: %q %v, want %q", i, s, err, want)
		}
	}
	if catcher.Count() != 0 || catcher.Refused() != 9 {
		t.Fatalf("delivered %d, refused %d", catcher.Count(), catcher.Refused())
	}

	// Box office sees both, and can send one again to a corrected address.
	token := env.Login(t, tn.Slug, "owner@"+tn.Slug+".test")
	var page app.Page[app.QueuedMail]
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/mail?status=bounced", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != bounce || page.Items[0].LastError == "" {
		t.Fatalf("bounced list: %+v", page.Items)
	}
	res = env.Do(t, http.MethodGet, tn.Slug, "/api/v1/mail?status=failed", token, nil)
	apptest.MustStatus(t, res, http.StatusOK)
	res.JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != temp || page.Items[0].Attempts != 8 {
		t.Fatalf("failed list: %+v", page.Items)
	}
	wantStatus(t, env.Do(t, http.MethodGet, tn.Slug, "/api/v1/mail?status=lost", token, nil), http.StatusBadRequest, "invalid_status")
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/mail/"+bounce.String()+"/retry", token, map[string]string{"to": "not an address"}), http.StatusBadRequest, "invalid_email")
	apptest.MustStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/mail/"+bounce.String()+"/retry", token, map[string]string{"to": "fixed@example.com"}), http.StatusOK)
	wantStatus(t, env.Do(t, http.MethodPost, tn.Slug, "/api/v1/mail/"+bounce.String()+"/retry", token, nil), http.StatusConflict, "mail_not_retryable")
	if s, err := env.App.Mail.Send(ctx, tn, bounce); err != nil || s != app.MailSent || len(catcher.To("fixed@example.com")) != 1 {
		t.Fatalf("resent: %q %v, %d", s, err, len(catcher.To("fixed@example.com")))
	}
}

// composerModule registers one mail composer (a module that renders what a
// message refers to from the database, as the tickets mail does).
type composerModule struct {
	kind    string
	compose app.MailComposer
}

func (c *composerModule) Name() string { return "composer-probe" }

func (c *composerModule) Register(r *app.Registrar) error {
	r.MailComposer(c.kind, c.compose)
	return nil
}

// As many senders as the pool has connections, each with a composer that
// reads the database, all send: a sender never holds a connection while its
// composer waits for another. (Composed inside the sender's transaction,
// every connection is held by a sender whose composer waits for a free one,
// and nothing moves until the deadline.)
func TestMailComposersDoNotStarveThePool(t *testing.T) {
	const pool = 4
	var a *app.App
	var entered sync.WaitGroup
	entered.Add(pool)
	together := make(chan struct{})
	go func() { entered.Wait(); close(together) }()
	var once sync.Map
	mod := &composerModule{kind: "test.reads", compose: func(ctx context.Context, tn tenants.Tenant, q app.QueuedMail) (app.ComposedMail, error) {
		// Every sender reaches its composer before any composer reads, so
		// the senders hold at once whatever they hold while composing.
		if _, seen := once.LoadOrStore(q.ID, true); !seen {
			entered.Done()
		}
		select {
		case <-together:
		case <-ctx.Done():
			return app.ComposedMail{}, ctx.Err()
		}
		var n int64
		err := a.TxWith(ctx, tn, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			return tx.Raw(`SELECT count(*) FROM mail_outbox WHERE ref = ?`, q.Ref).Scan(&n).Error
		})
		return app.ComposedMail{HTML: "<p>" + q.Ref + "</p>"}, err
	}}
	env := apptest.Start(t, dbURL, apptest.Options{DBMaxConns: pool, Modules: []app.Module{mod}})
	a = env.App
	tn := env.Tenant(t, apptest.UniqueSlug("mailpool"))
	ids := make([]uuid.UUID, pool)
	for i := range ids {
		ref := "order-" + strconv.Itoa(i)
		ids[i], _ = queueMail(t, a, tn, app.MailMessage{Key: "pool:" + ref, Kind: mod.kind, Ref: ref, To: "buyer@example.com", Subject: "Your tickets", Body: "Hello"})
	}
	// Bounded: a starved pool fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, pool)
	statuses := make([]string, pool)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], errs[i] = a.Mail.Send(ctx, tn, id)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || statuses[i] != app.MailSent {
			t.Fatalf("sender %d: %q, %v (a deadline here: senders starved the pool)", i, statuses[i], errs[i])
		}
	}
	if got := env.Mail.Count(); got != pool {
		t.Fatalf("the server got %d messages, want %d", got, pool)
	}
	for _, msg := range env.Mail.Messages() {
		if !strings.Contains(msg.HTML, "<p>order-") {
			t.Fatalf("message without its composed part: %+v", msg)
		}
	}
}
