package integrations

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"marquee/app"
)

// Connector health on the support console: per connector its last
// success, last error, the calls its provider still allows (Ticketmaster's
// Partner quota this hour from its Ratelimit-Quota-* headers, Discovery's
// day), the last Eventbrite webhook, and the channel oversells recorded.

// consolePanel reads the tenant's connectors for the console.
func consolePanel(ctx context.Context, tx *gorm.DB, now time.Time) (app.ConsolePanel, error) {
	var rows []struct {
		Name           string     `gorm:"column:name"`
		Provider       string     `gorm:"column:provider"`
		LastSuccessAt  *time.Time `gorm:"column:last_success_at"`
		LastErrorAt    *time.Time `gorm:"column:last_error_at"`
		LastError      *string    `gorm:"column:last_error"`
		QuotaAllowed   *int       `gorm:"column:quota_allowed"`
		QuotaAvailable *int       `gorm:"column:quota_available"`
		QuotaAt        *time.Time `gorm:"column:quota_at"`
		BackoffUntil   *time.Time `gorm:"column:backoff_until"`
		DiscoveryCalls int        `gorm:"column:discovery_calls"`
		LastWebhookAt  *time.Time `gorm:"column:last_webhook_at"`
		Oversells      int        `gorm:"column:oversells"`
		OversoldUnits  int        `gorm:"column:oversold_units"`
	}
	if err := tx.Raw(`SELECT c.name, c.provider, c.last_success_at, c.last_error_at, c.last_error, c.quota_allowed, c.quota_available, c.quota_at, c.backoff_until,
			CASE WHEN c.discovery_day = (?::timestamptz AT TIME ZONE 'UTC')::date THEN c.discovery_calls ELSE 0 END AS discovery_calls,
			(SELECT max(l.last_webhook_at) FROM int_listings l WHERE l.connector_id = c.id) AS last_webhook_at,
			(SELECT count(*) FROM int_oversells o WHERE o.connector_id = c.id) AS oversells,
			(SELECT coalesce(sum(o.quantity), 0) FROM int_oversells o WHERE o.connector_id = c.id) AS oversold_units
		FROM int_connectors c ORDER BY c.created_at`, now).Scan(&rows).Error; err != nil {
		return app.ConsolePanel{}, err
	}
	when := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	p := app.ConsolePanel{Columns: []string{"Connector", "Last success", "Last error", "Calls left", "Last webhook", "Oversells"},
		Empty: "No channel connectors."}
	for _, r := range rows {
		lastErr := "none"
		if r.LastErrorAt != nil && r.LastError != nil {
			lastErr = when(r.LastErrorAt) + ": " + truncate(*r.LastError, 200)
			if r.LastSuccessAt != nil && r.LastSuccessAt.After(*r.LastErrorAt) {
				lastErr += " (recovered)"
			}
		}
		left := "no published quota"
		hook := "—"
		if r.Provider == ProviderTicketmaster {
			partner := "Partner quota not seen yet"
			if r.QuotaAvailable != nil && r.QuotaAllowed != nil && r.QuotaAt != nil && r.QuotaAt.Truncate(time.Hour).Equal(now.Truncate(time.Hour)) {
				partner = fmt.Sprintf("Partner %d of %d this hour", *r.QuotaAvailable, *r.QuotaAllowed)
			} else if r.QuotaAllowed != nil {
				partner = fmt.Sprintf("Partner %d of %d (new hour)", *r.QuotaAllowed, *r.QuotaAllowed)
			}
			left = fmt.Sprintf("%s · Discovery %d of %d calls left today (UTC)", partner, max(DiscoveryPerDay-r.DiscoveryCalls, 0), DiscoveryPerDay)
			if r.BackoffUntil != nil && now.Before(*r.BackoffUntil) {
				left += " · backing off until " + when(r.BackoffUntil)
			}
			hook = "polled (no webhooks)"
		} else {
			hook = when(r.LastWebhookAt)
		}
		over := "none"
		if r.Oversells > 0 {
			over = fmt.Sprintf("%d (%d units)", r.Oversells, r.OversoldUnits)
		}
		p.Rows = append(p.Rows, []string{r.Name + " (" + r.Provider + ")", when(r.LastSuccessAt), lastErr, left, hook, over})
	}
	return p, nil
}
