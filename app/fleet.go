package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"marquee/tenants"
)

// MoveTenant moves a tenant's schema to another database server
// (tenants.Registry.Move), verifying on the target that its ledger's hash
// chain is intact before the registry points there, and audits the move.
func (a *App) MoveTenant(ctx context.Context, slug, to, actor, reason string, o tenants.MoveOptions) (tenants.MoveReport, error) {
	o.To, o.Actor, o.Reason = to, actor, reason
	o.Verify = a.verifyMovedLedger
	rep, err := a.Tenants.Move(ctx, a.Servers, slug, o)
	if errors.Is(err, tenants.ErrMoveCrashed) {
		return rep, err // a process that died audits nothing
	}
	if t, lerr := a.Tenants.Lookup(context.WithoutCancel(ctx), slug); lerr == nil {
		detail := fmt.Sprintf("%s → %s", rep.From, rep.To)
		if err != nil {
			detail += " failed: " + err.Error()
		}
		a.platformAudit(context.WithoutCancel(ctx), actor, "tenant.move", &t.ID, detail)
	}
	return rep, err
}

// verifyMovedLedger checks a tenant's ledger hash chain on the server a
// move is about to point it at.
func (a *App) verifyMovedLedger(ctx context.Context, t tenants.Tenant) error {
	res, err := a.Ledger.Verify(ctx, t)
	if err != nil {
		return fmt.Errorf("ledger on %s: %w", t.Server, err)
	}
	if !res.OK {
		return fmt.Errorf("ledger on %s is broken at entry %d (%s)", t.Server, res.BrokenAt, res.Reason)
	}
	return nil
}

// RecoverTenantMove ends a move whose process died
// (tenants.Registry.RecoverMove), verifying the ledger on the target before
// finishing a switch, and audits what it did.
func (a *App) RecoverTenantMove(ctx context.Context, slug, actor, reason string, o tenants.RecoverOptions) (tenants.RecoverReport, error) {
	o.Actor, o.Reason, o.Verify = actor, reason, a.verifyMovedLedger
	rep, err := a.Tenants.RecoverMove(ctx, a.Servers, slug, o)
	if errors.Is(err, tenants.ErrMoveLocked) {
		return rep, err // a live move: nothing was touched
	}
	if t, lerr := a.Tenants.Lookup(context.WithoutCancel(ctx), slug); lerr == nil {
		detail := fmt.Sprintf("%s → %s (died after %q): %s; serving from %s, %s", rep.From, rep.To, rep.Phase, rep.Outcome, rep.Server, rep.Status)
		if err != nil {
			detail = fmt.Sprintf("%s → %s failed: %v", rep.From, rep.To, err)
		}
		a.platformAudit(context.WithoutCancel(ctx), actor, "tenant.move.recover", &t.ID, detail)
	}
	return rep, err
}

// ExportTenant writes the archive of all of a tenant's data
// (tenants.Export), with its ledger verified at export time.
func (a *App) ExportTenant(ctx context.Context, t tenants.Tenant, w io.Writer) (tenants.ExportManifest, error) {
	res, err := a.Ledger.Verify(ctx, t)
	if err != nil {
		return tenants.ExportManifest{}, err
	}
	return tenants.Export(ctx, a.Servers, t, w, a.Now(), map[string]any{"ledger_verification": res})
}

// CompleteTenantDeletion deletes a tenant whose deletion is due
// (tenants.Registry.CompleteDeletion), its files in object storage with it,
// and forgets its policy here and on every other instance.
func (a *App) CompleteTenantDeletion(ctx context.Context, slug string, c tenants.Change) error {
	if err := a.Tenants.CompleteDeletion(ctx, a.Servers, slug, c, a.objects.RemoveTenant); err != nil {
		return err
	}
	a.Enforcer.Forget(slug)
	return nil
}
