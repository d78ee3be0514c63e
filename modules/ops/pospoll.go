package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"gorm.io/gorm"

	"marquee/app"
	"marquee/jobs"
	"marquee/tenants"
)

// Polling is the fallback for webhooks that never arrive: each minute a
// chain's polled connectors get one task each (time-bucketed ids, so a
// second scheduler or a retried fan-out enqueues nothing more), which lists
// the payments and the refunds created since the connector's cursor (minus
// an overlap for late status changes) from Square's GET /v2/payments and
// GET /v2/refunds and applies each through the webhook's idempotent path:
// a payment or refund a webhook brought already is a stale version (or its
// ledger difference is nothing) and changes nothing.

// Task types of the polling.
const (
	// TaskPOSPolls fans a chain's polling out, one task per connector.
	TaskPOSPolls = "ops:pos-polls"
	// TaskPOSPoll polls one connector.
	TaskPOSPoll = "ops:pos-poll"
)

const (
	pollEvery   = time.Minute
	pollOverlap = 15 * time.Minute
	pollPages   = 50  // a poll reads at most this many pages; the next goes on
	pollLimit   = 100 // payments per page (Square's maximum)
)

// tokenSealID is the additional data the access token is sealed under:
// not the connector's id, so the sealed signature key and token cannot be
// swapped for each other.
func tokenSealID(connector uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(connector, []byte("ops pos access token"))
}

type pollPayload struct {
	Connector uuid.UUID `json:"connector"`
}

// pollFanoutTask enqueues this minute's poll of each polled connector.
func (m *Module) pollFanoutTask(ctx context.Context, t tenants.Tenant, _ []byte) error {
	var ids []uuid.UUID
	if err := m.svc.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT id FROM ops_pos_connectors WHERE api_url IS NOT NULL ORDER BY id`).Scan(&ids).Error
	}); err != nil {
		return err
	}
	bucket := m.app.Now().UTC().Truncate(pollEvery).Unix()
	for _, id := range ids {
		_, err := m.app.Jobs.Enqueue(ctx, t, TaskPOSPoll, pollPayload{Connector: id},
			asynq.TaskID(fmt.Sprintf("ops-pos-poll:%s:%s:%d", t.Slug, id, bucket)), asynq.Queue(jobs.QueuePolling), asynq.MaxRetry(3))
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
	}
	return nil
}

// pollTask polls one connector.
func (m *Module) pollTask(ctx context.Context, t tenants.Tenant, payload []byte) error {
	var p pollPayload
	if err := json.Unmarshal(payload, &p); err != nil || p.Connector == uuid.Nil {
		return fmt.Errorf("ops: poll payload %q: %w", payload, asynq.SkipRetry)
	}
	_, err := m.svc.PollConnector(ctx, t, p.Connector)
	return err
}

// PollResult is what one poll of a connector found and did.
type PollResult struct {
	Listed      int   `json:"listed"` // payments and refunds
	Applied     int   `json:"applied"`
	LedgerMinor int64 `json:"ledger_minor"`
}

// squareListPage is one page of Square's ListPayments or ListPaymentRefunds.
type squareListPage struct {
	Payments []json.RawMessage `json:"payments"`
	Refunds  []json.RawMessage `json:"refunds"`
	Cursor   string            `json:"cursor"`
}

// PollConnector lists the connector's payments, then its refunds, created
// since its cursor and applies each once; it moves the cursor only when
// every page of both was read. A void is a payment's status (CANCELED),
// so it comes with the payments; a refund is an object of its own.
func (s *Service) PollConnector(ctx context.Context, t tenants.Tenant, connector uuid.UUID) (PollResult, error) {
	var rows []struct {
		MerchantID  string
		APIURL      *string
		TokenSealed []byte
		PollCursor  *time.Time
	}
	if err := s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT merchant_id, api_url, token_sealed, poll_cursor FROM ops_pos_connectors WHERE id = ?`, connector).Scan(&rows).Error
	}); err != nil {
		return PollResult{}, err
	}
	var res PollResult
	if len(rows) == 0 || rows[0].APIURL == nil {
		return res, nil // gone, or not polled: nothing to do
	}
	c := rows[0]
	token, err := s.open(tokenSealID(connector), c.TokenSealed)
	if err != nil {
		return res, fmt.Errorf("ops: connector %s token does not open: %w", connector, err)
	}
	conn, err := s.posConnector(ctx, t, connector)
	if err != nil || conn == nil {
		return res, err
	}
	// The list ends at the next whole second (RFC 3339 without fractions):
	// a payment made in this second is listed now, not a poll later.
	now := s.app.Now().UTC().Add(time.Second).Truncate(time.Second)
	begin := now.Add(-pollOverlap)
	if c.PollCursor != nil {
		begin = c.PollCursor.Add(-pollOverlap)
	}
	pollErr := func(err error) (PollResult, error) {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300]
		}
		_ = s.tx(ctx, t, func(tx *gorm.DB) error {
			return tx.Exec(`UPDATE ops_pos_connectors SET polled_at = ?, poll_error = ? WHERE id = ?`, now, msg, connector).Error
		})
		return res, err
	}
	for _, kind := range []string{"payment", "refund"} {
		if err := s.pollList(ctx, t, conn, kind, *c.APIURL, string(token), begin, now, &res); err != nil {
			return pollErr(err)
		}
	}
	err = s.tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Exec(`UPDATE ops_pos_connectors SET poll_cursor = GREATEST(coalesce(poll_cursor, ?), ?), polled_at = ?, poll_error = '' WHERE id = ?`,
			now, now, now, connector).Error
	})
	return res, err
}

// pollList reads every page of one list (payments or refunds) and applies
// each object through the webhook's idempotent path, as the event a
// webhook carrying its state would be. An object listed without a version
// (Square lists refunds without one) is ordered by its updated_at, and its
// event id names that instead, so a poll that lists it unchanged again
// finds a duplicate.
func (s *Service) pollList(ctx context.Context, t tenants.Tenant, conn *posConnector, kind, base, token string, begin, end time.Time, res *PollResult) error {
	cursor := ""
	for page := 0; ; page++ {
		if page == pollPages {
			return fmt.Errorf("more than %d pages of %ss; the next poll goes on", pollPages, kind)
		}
		list, err := s.listPage(ctx, base, kind, token, begin, end, cursor)
		if err != nil {
			return err
		}
		objects := list.Payments
		if kind == "refund" {
			objects = list.Refunds
		}
		for _, raw := range objects {
			res.Listed++
			var p SquarePayment
			if json.Unmarshal(raw, &p) != nil || p.ID == "" || len(p.ID) > 200 {
				continue
			}
			listed := p.Version == 0
			var evt SquareEvent
			evt.MerchantID, evt.Type, evt.EventID = conn.merchantID, kind+".updated", fmt.Sprintf("poll:%s:v%d", p.ID, p.Version)
			if kind == "refund" {
				evt.EventID = fmt.Sprintf("poll:refund:%s:v%d", p.ID, p.Version)
			}
			if listed {
				evt.EventID = fmt.Sprintf("poll:%s:%s:%s:%s", kind, p.ID, p.Status, p.UpdatedAt.UTC().Format(time.RFC3339Nano))
			}
			evt.Data.Type, evt.Data.ID, evt.Data.Object = kind, p.ID, map[string]json.RawMessage{kind: raw}
			out, err := s.applyEvent(ctx, t, conn, evt, listed)
			if err != nil {
				var pe *app.Error
				if errors.As(err, &pe) && pe.Kind == app.KindInvalid {
					// An object the webhook path refuses as well (no
					// currency, a negative amount): skipped, as a webhook
					// carrying it would be.
					s.app.Log.Warn("ops: polled object refused", "tenant", t.Slug, "connector", conn.id, "kind", kind, "id", p.ID, "err", err)
					continue
				}
				return err
			}
			if out.Outcome == "applied" {
				res.Applied++
			}
			res.LedgerMinor += out.LedgerMinor
		}
		if cursor = list.Cursor; cursor == "" {
			return nil
		}
	}
}

// listPage reads one page of Square's ListPayments (GET /v2/payments) or
// ListPaymentRefunds (GET /v2/refunds).
func (s *Service) listPage(ctx context.Context, base, kind, token string, begin, end time.Time, cursor string) (squareListPage, error) {
	q := url.Values{"begin_time": {begin.Format(time.RFC3339)}, "end_time": {end.Format(time.RFC3339)}, "sort_order": {"ASC"},
		"limit": {fmt.Sprint(pollLimit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	path, what := "/v2/payments?", "list payments"
	if kind == "refund" {
		path, what = "/v2/refunds?", "list refunds"
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+path+q.Encode(), nil)
	if err != nil {
		return squareListPage{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Square-Version", "2024-01-18")
	req.Header.Set("Accept", "application/json")
	resp, err := s.poller.Do(req)
	if err != nil {
		return squareListPage{}, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return squareListPage{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return squareListPage{}, fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)
	}
	var page squareListPage
	if err := json.Unmarshal(body, &page); err != nil {
		return squareListPage{}, fmt.Errorf("%s: %w", what, err)
	}
	return page, nil
}
