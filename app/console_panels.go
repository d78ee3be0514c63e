package app

import (
	"context"
	"time"

	"gorm.io/gorm"

	"marquee/tenants"
)

// ConsolePanel is a module's table on a tenant's support console page (a
// connector's health, say): what a number in Usage cannot say. Cells are
// text; the core shows them as given, escaped.
type ConsolePanel struct {
	Columns []string
	Rows    [][]string
	// Empty is said when there are no rows.
	Empty string
}

// ConsolePanelFunc reads a panel inside a read-only transaction in the
// tenant's scope, at now (the App's clock).
type ConsolePanelFunc func(ctx context.Context, tx *gorm.DB, now time.Time) (ConsolePanel, error)

type consolePanel struct {
	module, id, title string
	fn                ConsolePanelFunc
}

// ConsolePanel adds a table to every tenant's support console page; id is
// the section's HTML id (a module-specific word).
func (r *Registrar) ConsolePanel(id, title string, fn ConsolePanelFunc) {
	r.app.panels = append(r.app.panels, consolePanel{module: r.module, id: id, title: title, fn: fn})
}

// ConsolePanelView is a panel as read for one tenant; Err names a panel
// that could not be read, without failing the page.
type ConsolePanelView struct {
	ID, Title string
	ConsolePanel
	Err string
}

// TenantPanels reads the modules' console panels for a tenant.
func (a *App) TenantPanels(ctx context.Context, t tenants.Tenant) []ConsolePanelView {
	out := make([]ConsolePanelView, 0, len(a.panels))
	for _, p := range a.panels {
		v := ConsolePanelView{ID: p.id, Title: p.title}
		err := a.TxWith(ctx, t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
			var err error
			v.ConsolePanel, err = p.fn(ctx, tx, a.Now())
			return err
		})
		if err != nil {
			v.Err = err.Error()
		}
		out = append(out, v)
	}
	return out
}
