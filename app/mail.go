package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	gomail "github.com/wneessen/go-mail"
	"gorm.io/gorm"

	"marquee/jobs"
	"marquee/tenants"
)

// The core owns mail: every module writes its messages into the tenant's
// durable outbox (mail_outbox) inside the transaction of what they tell, and
// the core sends them over SMTP from a retried Asynq task. A message's
// purpose key is unique, so a purpose (an order's tickets) is queued once
// however often the code that queues it runs, and a message is marked sent
// in the transaction that holds its row locked while it is handed to the
// SMTP server, so retries and concurrent senders never send it twice. (A
// crash after the server accepted the message and before the commit is the
// one window left: the message goes again with the same Message-ID, which
// receiving systems collapse.)

// Mail statuses.
const (
	MailQueued  = "queued"
	MailSent    = "sent"
	MailFailed  = "failed"  // temporary failures until the attempts ran out
	MailBounced = "bounced" // the server refused the recipient or message for good
)

const (
	mailSendTask  = "core:mail-send"
	mailSweepTask = "core:mail-sweep"
	// mailMaxAttempts is how often a message is tried before it is failed.
	mailMaxAttempts = 8
)

// MailMessage is what a module queues. Key names the message's purpose and
// is unique per chain: queueing the same key again queues nothing. Kind
// selects the composer (registered with Registrar.MailComposer) that adds
// attachments and an HTML part when the message is sent; Ref is what the
// message is about (an order id), for status look-ups.
type MailMessage struct {
	Key     string
	Kind    string
	Ref     string
	To      string
	Subject string
	Body    string
}

// MailAttachment is a file sent with a message.
type MailAttachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// ComposedMail is what a composer adds to a message when it is sent.
type ComposedMail struct {
	HTML        string
	Attachments []MailAttachment
}

// MailComposer renders a message's attachments and HTML part from what it
// refers to, when it is sent (not in the transaction that queued it, so a
// payment never waits for a PDF). It runs outside any transaction of the
// sender, so it may read the database; it must be deterministic enough to be
// called again on a retry.
type MailComposer func(ctx context.Context, t tenants.Tenant, m QueuedMail) (ComposedMail, error)

// QueuedMail is a message in the outbox, as box office sees it.
type QueuedMail struct {
	ID        uuid.UUID  `gorm:"column:id" json:"id"`
	Key       string     `gorm:"column:purpose_key" json:"key"`
	Kind      string     `gorm:"column:kind" json:"kind"`
	Ref       string     `gorm:"column:ref" json:"ref"`
	To        string     `gorm:"column:to_email" json:"to"`
	Subject   string     `gorm:"column:subject" json:"subject"`
	Body      string     `gorm:"column:body" json:"-"`
	Status    string     `gorm:"column:status" json:"status"`
	Attempts  int        `gorm:"column:attempts" json:"attempts"`
	LastError string     `gorm:"column:last_error" json:"last_error,omitempty"`
	CreatedAt time.Time  `gorm:"column:created_at" json:"created_at"`
	SentAt    *time.Time `gorm:"column:sent_at" json:"sent_at,omitempty"`
	MessageID *string    `gorm:"column:message_id" json:"message_id,omitempty"`
}

const queuedMailCols = `id, purpose_key, kind, ref, to_email, subject, body, status, attempts, last_error, created_at, sent_at, message_id`

// Mailer is the core's mail capability (Core.Mail).
type Mailer struct {
	a         *App
	mu        sync.RWMutex
	composers map[string]MailComposer
	transport MailTransport
}

// MailTransport hands one message to a mail server.
type MailTransport interface {
	Send(ctx context.Context, m *gomail.Msg) error
}

func newMailer(a *App) *Mailer {
	return &Mailer{a: a, composers: map[string]MailComposer{}}
}

// Queue writes a message into the outbox in tx, the transaction of what it
// tells. It answers the message's id and whether it is new; an existing key
// answers the message queued before and false.
func (m *Mailer) Queue(tx *gorm.DB, msg MailMessage) (uuid.UUID, bool, error) {
	if msg.Key == "" || msg.To == "" || msg.Kind == "" {
		return uuid.Nil, false, errors.New("mail: a message needs a key, a kind and a recipient")
	}
	var ids []uuid.UUID
	// The unique purpose key decides: a purpose is queued once.
	if err := tx.Raw(`INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (purpose_key) DO NOTHING RETURNING id`,
		uuid.Must(uuid.NewV7()), msg.Key, msg.Kind, msg.Ref, msg.To, msg.Subject, msg.Body).Scan(&ids).Error; err != nil {
		return uuid.Nil, false, err
	}
	if len(ids) == 1 {
		return ids[0], true, nil
	}
	err := tx.Raw(`SELECT id FROM mail_outbox WHERE purpose_key = ?`, msg.Key).Scan(&ids).Error
	if err == nil && len(ids) == 0 {
		err = errors.New("mail: queued message not found")
	}
	if err != nil {
		return uuid.Nil, false, err
	}
	return ids[0], false, nil
}

// QueuePgx is Queue inside a pgx transaction (a module's hot path that
// runs on tenants.Pgx rather than gorm): the same row, the same purpose key.
func (m *Mailer) QueuePgx(tx *tenants.Pgx, msg MailMessage) (uuid.UUID, bool, error) {
	if msg.Key == "" || msg.To == "" || msg.Kind == "" {
		return uuid.Nil, false, errors.New("mail: a message needs a key, a kind and a recipient")
	}
	var id uuid.UUID
	err := tx.QueryRow(`INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (purpose_key) DO NOTHING RETURNING id`,
		uuid.Must(uuid.NewV7()), msg.Key, msg.Kind, msg.Ref, msg.To, msg.Subject, msg.Body).Scan(&id)
	if err == nil {
		return id, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, err
	}
	if err := tx.QueryRow(`SELECT id FROM mail_outbox WHERE purpose_key = $1`, msg.Key).Scan(&id); err != nil {
		return uuid.Nil, false, err
	}
	return id, false, nil
}

// QueueStep is Queue as a step of a piped transaction (tenants.Piped):
// the same row, the same purpose key, in one statement that answers the
// message's id, new or queued before, into *id.
func (m *Mailer) QueueStep(msg MailMessage, id *uuid.UUID) (tenants.Step, error) {
	if msg.Key == "" || msg.To == "" || msg.Kind == "" {
		return tenants.Step{}, errors.New("mail: a message needs a key, a kind and a recipient")
	}
	return tenants.Step{SQL: queueStepSQL,
		Args: []any{uuid.Must(uuid.NewV7()), msg.Key, msg.Kind, msg.Ref, msg.To, msg.Subject, msg.Body},
		Read: func(rows pgx.Rows) error {
			if !rows.Next() {
				return errors.New("mail: queued message not found")
			}
			return rows.Scan(id)
		}}, nil
}

// queueStepSQL inserts a message unless its purpose was queued; either way
// it answers the purpose's message.
const queueStepSQL = `WITH ins AS (INSERT INTO mail_outbox (id, purpose_key, kind, ref, to_email, subject, body)
	VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (purpose_key) DO NOTHING RETURNING id)
SELECT id FROM ins UNION ALL SELECT id FROM mail_outbox WHERE purpose_key = $2 AND NOT EXISTS (SELECT 1 FROM ins)`

// Dispatch asks for messages queued by a committed transaction to be sent
// now. A message whose task could not be queued is sent by the sweep.
func (m *Mailer) Dispatch(ctx context.Context, t tenants.Tenant, ids ...uuid.UUID) {
	for _, id := range ids {
		_, err := m.a.Jobs.Enqueue(context.WithoutCancel(ctx), t, mailSendTask, mailTask{ID: id},
			asynq.TaskID("mail:"+t.Slug+":"+id.String()), asynq.Queue(jobs.QueueDefault), asynq.MaxRetry(mailMaxAttempts))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			m.a.Log.Warn("mail task not queued; the sweep sends it", "tenant", t.Slug, "mail", id, "err", err)
		}
	}
}

// ByRef lists the messages about ref, newest first.
func (m *Mailer) ByRef(ctx context.Context, t tenants.Tenant, ref string) ([]QueuedMail, error) {
	var out []QueuedMail
	err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+queuedMailCols+` FROM mail_outbox WHERE ref = ? ORDER BY created_at DESC, id DESC`, ref).Scan(&out).Error
	})
	return out, err
}

// List lists the chain's messages, newest first, optionally of one status,
// before the cursor (a message id).
func (m *Mailer) List(ctx context.Context, t tenants.Tenant, status string, before uuid.UUID, limit int) ([]QueuedMail, error) {
	var out []QueuedMail
	err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		q := `SELECT ` + queuedMailCols + ` FROM mail_outbox WHERE (? = '' OR status = ?) AND (? = ?::uuid OR id < ?) ORDER BY id DESC LIMIT ?`
		return tx.Raw(q, status, status, before, uuid.Nil, before, limit).Scan(&out).Error
	})
	return out, err
}

// Counts answers how many messages the chain has in each status.
func (m *Mailer) Counts(ctx context.Context, t tenants.Tenant) (map[string]int64, error) {
	var rows []struct {
		Status string `gorm:"column:status"`
		N      int64  `gorm:"column:n"`
	}
	err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT status, count(*) AS n FROM mail_outbox GROUP BY status`).Scan(&rows).Error
	})
	out := map[string]int64{MailQueued: 0, MailSent: 0, MailFailed: 0, MailBounced: 0}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// Retry queues a failed or bounced message again (box office fixed the
// address, or the server is back).
func (m *Mailer) Retry(ctx context.Context, t tenants.Tenant, id uuid.UUID, to string) error {
	var n int64
	err := m.a.Tx(ctx, t, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE mail_outbox SET status = 'queued', attempts = 0, last_error = '', next_attempt_at = now(),
			to_email = coalesce(NULLIF(?, ''), to_email) WHERE id = ? AND status IN ('failed', 'bounced')`, to, id)
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return Conflict("mail_not_retryable", "only a failed or bounced message can be sent again")
	}
	m.Dispatch(ctx, t, id)
	return nil
}

// registerMail wires the sender and the sweep; the transport comes from
// MARQUEE_SMTP_URL.
func (a *App) registerMail(r *Registrar) error {
	if a.Config.SMTPURL != "" {
		tr, err := NewSMTPTransport(a.Config.SMTPURL)
		if err != nil {
			return err
		}
		a.Mail.transport = tr
	}
	// Mail that is owed (a refund notice) still goes out while a chain is suspended.
	r.TaskEvenWhenSuspended(mailSendTask, a.Mail.sendTask)
	r.TaskEvenWhenSuspended(mailSweepTask, a.Mail.sweepTask)
	r.Every(jobs.Periodic{Cron: "* * * * *", Type: mailSweepTask, Queue: jobs.QueueDefault, Bucket: time.Minute})
	a.registerMailRoutes(r)
	return nil
}

// SetMailTransport replaces the transport (tests, demo).
func (a *App) SetMailTransport(t MailTransport) { a.Mail.transport = t }

// MailComposer registers the composer of a kind of message.
func (r *Registrar) MailComposer(kind string, fn MailComposer) {
	r.app.Mail.mu.Lock()
	defer r.app.Mail.mu.Unlock()
	r.app.Mail.composers[kind] = fn
}

type mailTask struct {
	ID uuid.UUID `json:"id"`
}

func (m *Mailer) sendTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p mailTask
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
	}
	_, err := m.Send(ctx, t, p.ID)
	return err
}

// DispatchQueued asks for every queued message that is due to be sent now
// (after a bulk change queued many: an event's cancellation).
func (m *Mailer) DispatchQueued(ctx context.Context, t tenants.Tenant) error {
	return m.dispatchDue(ctx, t, 0)
}

// SendDue sends up to limit due messages now, in this goroutine, and
// answers how many it sent (tests, and a drain that must finish).
func (m *Mailer) SendDue(ctx context.Context, t tenants.Tenant, limit int) (int, error) {
	var ids []uuid.UUID
	if err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT ?`, limit).Scan(&ids).Error
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		s, err := m.Send(ctx, t, id)
		if err != nil {
			return n, err
		}
		if s == MailSent {
			n++
		}
	}
	return n, nil
}

func (m *Mailer) dispatchDue(ctx context.Context, t tenants.Tenant, age time.Duration) error {
	var ids []uuid.UUID
	if err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= now() - make_interval(secs => ?) ORDER BY next_attempt_at LIMIT 5000`, age.Seconds()).Scan(&ids).Error
	}); err != nil {
		return err
	}
	m.Dispatch(ctx, t, ids...)
	return nil
}

// sweepTask sends what is due and has no task (its enqueue failed, or the
// task ran out of retries before the message's own attempts did).
func (m *Mailer) sweepTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	// Only what has waited a while: a fresh message's own task is running.
	return m.dispatchDue(ctx, t, 30*time.Second)
}

// ErrNoMailTransport keeps mail queued when no SMTP server is configured.
var ErrNoMailTransport = errors.New("mail: no SMTP server configured (MARQUEE_SMTP_URL)")

// Send sends one queued message now, if it is still queued, and answers its
// status. Its row stays locked from the check to the commit that records
// the outcome, so two senders (a retry and the sweep) never both send it.
func (m *Mailer) Send(ctx context.Context, t tenants.Tenant, id uuid.UUID) (string, error) {
	if m.transport == nil {
		return MailQueued, &jobs.RetryIn{After: time.Minute, Err: ErrNoMailTransport}
	}
	// The composer runs before the transaction that locks the row, never
	// inside it: it reads what the message is about (an order, its tickets)
	// on connections of its own, and a sender that held one pool connection
	// while it waited for another would deadlock the pool as soon as every
	// connection was held by such a sender (the worker runs as many tasks
	// at once as a small pool has connections).
	var pending []QueuedMail
	if err := m.a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT `+queuedMailCols+` FROM mail_outbox WHERE id = ? AND status = 'queued'`, id).Scan(&pending).Error
	}); err != nil {
		return "", err
	}
	if len(pending) == 0 {
		return "", nil // sent or given up
	}
	extra, composeErr := m.compose(ctx, t, pending[0])
	status := ""
	var sendErr error
	err := m.a.Tx(ctx, t, func(tx *gorm.DB) error {
		var rows []QueuedMail
		// SKIP LOCKED: a message another sender holds is that sender's.
		if err := tx.Raw(`SELECT `+queuedMailCols+` FROM mail_outbox WHERE id = ? AND status = 'queued' FOR UPDATE SKIP LOCKED`, id).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil // sent, given up, or being sent by another sender
		}
		// Nothing in here takes a second connection: the row, as locked,
		// gives the recipient and text; the composed parts come from above
		// (a composer reads what the message refers to, which the row's
		// changes, a corrected address, leave alone).
		q := rows[0]
		msgID := mailMessageID(t, q.Key, m.a.Config.BaseDomain)
		if sendErr = composeErr; sendErr == nil {
			sendErr = m.deliver(ctx, q, msgID, extra)
		}
		switch {
		case sendErr == nil:
			status = MailSent
			return tx.Exec(`UPDATE mail_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = '', message_id = ? WHERE id = ?`, msgID, id).Error
		case permanent(sendErr):
			status = MailBounced
			return tx.Exec(`UPDATE mail_outbox SET status = 'bounced', attempts = attempts + 1, last_error = ? WHERE id = ?`, errText(sendErr), id).Error
		case q.Attempts+1 >= mailMaxAttempts:
			status = MailFailed
			return tx.Exec(`UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ?`, errText(sendErr), id).Error
		default:
			status = MailQueued
			// Backoff doubles from 15 s; the task's retry follows it.
			wait := mailBackoff(q.Attempts + 1)
			return tx.Exec(`UPDATE mail_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = now() + make_interval(secs => ?) WHERE id = ?`,
				errText(sendErr), wait.Seconds(), id).Error
		}
	})
	if err != nil {
		return "", err
	}
	if status == MailQueued && sendErr != nil {
		m.a.Log.Warn("mail not sent; retrying", "tenant", t.Slug, "mail", id, "err", errText(sendErr))
		return status, &jobs.RetryIn{After: mailBackoff(1), Err: sendErr}
	}
	if status == MailBounced || status == MailFailed {
		m.a.Log.Warn("mail given up", "tenant", t.Slug, "mail", id, "status", status, "err", errText(sendErr))
	}
	return status, nil
}

func mailBackoff(attempt int) time.Duration {
	return min(15*time.Second<<min(attempt-1, 10), time.Hour)
}

// errText is what an error says, short enough to show box office.
func errText(err error) string {
	s := err.Error()
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// permanent reports an SMTP refusal that no retry changes (a 5xx answer).
func permanent(err error) bool {
	if errors.As(err, new(refused)) {
		return true
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp() && se.ErrorCode() >= 500
	}
	return false
}

// refused is a message no attempt can send.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }
func (r refused) Unwrap() error { return r.err }

// mailMessageID is the message's Message-ID, the same on every attempt.
func mailMessageID(t tenants.Tenant, key, domain string) string {
	h := sha256.Sum256([]byte(t.Slug + "\x00" + key))
	if domain == "" || strings.ContainsAny(domain, "<>@ ") {
		domain = "marquee.invalid"
	}
	return hex.EncodeToString(h[:16]) + "@" + domain
}

// compose runs the composer of the message's kind, if it has one.
func (m *Mailer) compose(ctx context.Context, t tenants.Tenant, q QueuedMail) (ComposedMail, error) {
	m.mu.RLock()
	compose := m.composers[q.Kind]
	m.mu.RUnlock()
	if compose == nil {
		return ComposedMail{}, nil
	}
	extra, err := compose(ctx, t, q)
	if err != nil {
		return ComposedMail{}, fmt.Errorf("compose %s: %w", q.Kind, err)
	}
	return extra, nil
}

// deliver builds one message from its row and composed parts and hands it
// to the transport. It touches no database.
func (m *Mailer) deliver(ctx context.Context, q QueuedMail, msgID string, extra ComposedMail) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.a.Config.MailFrom); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := msg.To(q.To); err != nil {
		return refused{err} // an address no server will take
	}
	msg.Subject(q.Subject)
	msg.SetMessageIDWithValue(msgID)
	msg.SetDate()
	msg.SetGenHeader("X-Marquee-Key", q.Key)
	msg.SetBodyString(gomail.TypeTextPlain, q.Body)
	if extra.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, extra.HTML)
	}
	for _, at := range extra.Attachments {
		msg.AttachReadSeeker(at.Name, bytes.NewReader(at.Data), gomail.WithFileContentType(gomail.ContentType(at.ContentType)))
	}
	return m.transport.Send(ctx, msg)
}

// SMTPTransport sends through one SMTP server.
type SMTPTransport struct {
	client *gomail.Client
}

// NewSMTPTransport reads an SMTP URL: smtp://[user:pass@]host[:port] with
// STARTTLS when the server offers it (?tls=none: never; ?tls=required:
// always), smtps:// for TLS from the first byte.
func NewSMTPTransport(raw string) (*SMTPTransport, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.New("MARQUEE_SMTP_URL: not smtp://host:port or smtps://host:port")
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portText = u.Host, ""
	}
	opts := []gomail.Option{gomail.WithTimeout(20 * time.Second)}
	switch u.Scheme {
	case "smtp":
		if portText == "" {
			portText = "587"
		}
		switch u.Query().Get("tls") {
		case "none":
			opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		case "required":
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		default:
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		}
	case "smtps":
		if portText == "" {
			portText = "465"
		}
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("MARQUEE_SMTP_URL: scheme %q is not smtp or smtps", u.Scheme)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, errors.New("MARQUEE_SMTP_URL: the port is not a number")
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("MARQUEE_SMTP_URL: %w", err)
	}
	return &SMTPTransport{client: c}, nil
}

// Send dials, sends one message and closes. go-mail's Client holds one
// connection at a time, so concurrent senders each dial their own through
// the client's settings.
func (s *SMTPTransport) Send(ctx context.Context, msg *gomail.Msg) error {
	sc, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to the SMTP server: %w", err) // temporary: retried
	}
	defer func() { _ = s.client.CloseWithSMTPClient(sc) }()
	return s.client.SendWithSMTPClient(sc, msg)
}
