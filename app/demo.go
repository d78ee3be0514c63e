package app

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"marquee/tenants"
)

// DemoPassword is the password of every demo account.
const DemoPassword = "demo-password-1"

// DemoTenant describes a seeded demo chain.
type DemoTenant struct {
	Tenant tenants.Tenant
	Owner  string
}

// DemoSupportEmail is the demo's platform support account.
const DemoSupportEmail = "support@marquee.test"

// SeedDemo creates the demo chains acme and globex with their owners, the
// support account, and every module's sample data. Chains that already exist
// are left as they are, so the demo can be restarted.
func (a *App) SeedDemo(ctx context.Context) ([]DemoTenant, error) {
	if _, err := a.CreateSupportUser(ctx, DemoSupportEmail, "Platform Support", DemoPassword); err != nil {
		return nil, fmt.Errorf("support user: %w", err)
	}
	chains := []struct{ slug, name string }{{"acme", "Acme Live"}, {"globex", "Globex Halls"}}
	var out []DemoTenant
	for _, ch := range chains {
		owner := "owner@" + ch.slug + ".test"
		t, err := a.CreateTenant(ctx, ch.slug, ch.name, owner, ch.name+" Owner", DemoPassword)
		if errors.Is(err, tenants.ErrExists) {
			out = append(out, DemoTenant{Tenant: t, Owner: owner})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("demo tenant %s: %w", ch.slug, err)
		}
		if err := a.Tx(ctx, t, func(tx *gorm.DB) error {
			_, err := a.Ledger.Append(tx, "venue.deposit", "demo-opening-balance", 250000, "USD", "opening deposit for the demo")
			return err
		}); err != nil {
			return nil, err
		}
		for _, seed := range a.seeds {
			if err := seed.fn(ctx, t, &Seeding{a: a, t: t}); err != nil {
				return nil, fmt.Errorf("seed %s (module %s): %w", ch.slug, seed.module, err)
			}
		}
		out = append(out, DemoTenant{Tenant: t, Owner: owner})
	}
	return out, nil
}
