package migrations_test

import (
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"marquee/migrations"
)

// block is a range of migration numbers and who may write files in it (see
// README.md). Add a row here, and in the README, to claim the next block.
type block struct {
	from, to int
	owners   []string
	what     string
}

var blocks = []block{
	{1, 29, []string{"core"}, "the core (and the founding files listed in founding)"},
	{30, 39, []string{"inventory"}, "inventory money"},
	{40, 49, []string{"inventory"}, "inventory holds"},
	{50, 59, []string{"core"}, "core security notices"},
	{60, 69, []string{"inventory"}, "reserved: the cart"},
	{70, 79, []string{"calendar", "core"}, "names that scale"},
	{80, 89, []string{"booking"}, "booking: offers, terms, settlement"},
	{90, 99, []string{"calendar", "core"}, "unused (held a pending contract step for a while)"},
	{100, 109, []string{"inventory"}, "inventory at the door: keys, revocations, check-ins"},
	{110, 119, []string{"staffing"}, "staffing: staff, certifications, shifts, requirements"},
	{120, 129, []string{"core"}, "fleet: placement on servers, moves, tenant status history"},
	{130, 139, []string{"ops"}, "ops: zones, occupancy, alerts, POS, revenue, incidents"},
	{140, 149, []string{"inventory"}, "inventory offline scanning: synced scans, conflicts"},
	{150, 159, []string{"inventory"}, "inventory after the sale: transfer, waitlist, resale"},
	{160, 169, []string{"integrations"}, "integrations: Ticketmaster and Eventbrite connectors, listings, channel orders, reconciliation"},
	{170, 179, []string{"search", "inventory"}, "storefront search and trending; demand-based pricing"},
	{180, 189, []string{"core", "inventory"}, "delivery and limits: the core's mail outbox, wallet passes, limits against hoarding and fraud"},
	{200, 209, []string{"inventory"}, "inventory: the on-sale at full speed (adaptive admission)"},
	{210, 219, []string{"inventory"}, "inventory at the door, continued: everyone out at"},
	{220, 229, []string{"integrations"}, "integrations: channel sales in the ticket facts, tier price and sale-window pushes, inventory status"},
	{230, 239, []string{"inventory"}, "inventory: the ticketing editor and seat-map builder"},
	{240, 249, []string{"inventory"}, "inventory: refunds per ticket"},
	{250, 259, []string{"booking"}, "booking: contracts, signatures and the seal; venue rental terms"},
	{260, 269, []string{"staffing"}, "staffing: mail through the core, timesheets, swaps"},
	{270, 279, []string{"ops"}, "ops: contacts and mail through the core, POS polling"},
	{290, 299, []string{"inventory"}, "inventory limits: tickets per payment card"},
	{300, 309, []string{"booking"}, "booking: venue rentals, their deposits and numbered invoices"},
	{310, 319, []string{"calendar"}, "calendar in the portal: promoter, on-sale schedule and presale, hold challenges"},
	{320, 329, []string{"inventory"}, "inventory: one cart per buyer"},
	{350, 359, []string{"ops"}, "ops: POS deliveries kept in one statement, refunds polled"},
	{360, 369, []string{"inventory"}, "inventory limits: devices and the CAPTCHA"},
	{370, 379, []string{"core", "inventory"}, "the on-sale at full speed, continued: the ledger sealed after the commit"},
	{380, 389, []string{"inventory"}, "the on-sale at full speed, continued: a payment's common case in one round trip deciding it"},
	{400, 409, []string{"ops"}, "ops: POS deliveries on the sealed ledger"},
	{420, 429, []string{"core"}, "fleet, continued: moves that survive their process"},
	{430, 439, []string{"integrations"}, "integrations: partial refunds, periodic and final reconciliation, Discovery budget"},
	// Pending contract steps wait above every block a release can ship
	// (goose refuses a version below one applied), so a new block never
	// makes them renumber; one that ships keeps its number, and the
	// blocks after it start above it (README).
	{900, 999, []string{"calendar", "core", "ops", "staffing"}, "pending contract steps"},
}

// owners are the names a migration file may start with after its number.
var owners = []string{"core", "calendar", "inventory", "booking", "staffing", "ops", "integrations", "search"}

// founding are the files named before the owner convention, with their
// owner; "founding" marks the calendar's and inventory's first files, allowed
// in the core's block 00001–00029 only. Closed: new files follow the convention.
var founding = map[string]string{
	"control/00001_platform.sql":                    "core",
	"tenant/00002_calendar.sql":                     "founding",
	"tenant/00003_idempotency.sql":                  "core",
	"tenant/00004_inventory.sql":                    "founding",
	"tenant/00020_waiting_room.sql":                 "founding",
	"tenant/00021_calendar_idempotency_to_core.sql": "founding",
	"tenant/00022_ledger_append.sql":                "core",
	"tenant/00030_payment_reviews.sql":              "inventory",
	"tenant/00031_close_unpaid_orders.sql":          "inventory",
	"tenant/00032_event_cancellations.sql":          "inventory",
	"tenant/00040_holds_by_buyer.sql":               "inventory",
	"tenant/00050_security_notices.sql":             "core",
}

// checkBlocks returns every breach of the numbering rules in one tree
// (applied and pending files together), named by tree/file.
func checkBlocks(tree string, trees ...fs.FS) []error {
	var errs []error
	seen := map[int]string{}
	for _, fsys := range trees {
		names, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			return []error{err}
		}
		for _, name := range names {
			path := tree + "/" + name
			num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
			n, err := strconv.Atoi(num)
			if !ok || err != nil || len(num) != 5 {
				errs = append(errs, fmt.Errorf("%s: not NNNNN_<owner>_<what>.sql", path))
				continue
			}
			if other, dup := seen[n]; dup {
				errs = append(errs, fmt.Errorf("%s: number %05d already used by %s", path, n, other))
			}
			seen[n] = path
			owner, isFounding := founding[path]
			if !isFounding {
				owner, _, _ = strings.Cut(rest, "_")
				if !slices.Contains(owners, owner) {
					errs = append(errs, fmt.Errorf("%s: the name does not start with its owner (one of %v) after the number", path, owners))
					continue
				}
			}
			i := slices.IndexFunc(blocks, func(b block) bool { return b.from <= n && n <= b.to })
			switch {
			case i < 0:
				errs = append(errs, fmt.Errorf("%s: number %05d is in no block; claim one in migrations/README.md and blocks_test.go", path, n))
			case owner == "founding" && blocks[i].from != 1:
				errs = append(errs, fmt.Errorf("%s: a founding file outside block 00001–00029", path))
			case owner != "founding" && !slices.Contains(blocks[i].owners, owner):
				errs = append(errs, fmt.Errorf("%s: %s's file in block %05d–%05d (%s) of %v", path, owner, blocks[i].from, blocks[i].to, blocks[i].what, blocks[i].owners))
			}
		}
	}
	return errs
}

func TestMigrationBlocks(t *testing.T) {
	for _, tr := range []struct {
		name  string
		trees []fs.FS
	}{
		{"tenant", []fs.FS{migrations.TenantFS(), migrations.ContractTenantFS()}},
		{"control", []fs.FS{migrations.ControlFS(), migrations.ContractControlFS()}},
	} {
		for _, err := range checkBlocks(tr.name, tr.trees...) {
			t.Error(err)
		}
	}
	// The founding list names files that exist: it cannot hide a new one.
	for path := range founding {
		tree, name, _ := strings.Cut(path, "/")
		fsys := migrations.TenantFS()
		if tree == "control" {
			fsys = migrations.ControlFS()
		}
		if _, err := fs.Stat(fsys, name); err != nil {
			t.Errorf("founding file %s: %v", path, err)
		}
	}
}

// The check itself catches each kind of breach.
func TestMigrationBlocksRefuse(t *testing.T) {
	applied := fstest.MapFS{
		"00071_calendar_prefix.sql":     file(""),
		"00033_calendar_things.sql":     file(""), // inventory's block
		"00195_core_later.sql":          file(""), // no block
		"00072_notes.sql":               file(""), // no owner in the name
		"00073_inventory_wrong_blk.sql": file(""), // not an owner of 0007x
	}
	pending := fstest.MapFS{"00071_calendar_prefix_contract.sql": file("")} // shares 00071
	errs := checkBlocks("tenant", applied, pending)
	want := []string{"00033_calendar_things.sql: calendar's file in block", "00195_core_later.sql: number 00195 is in no block",
		"00072_notes.sql: the name does not start", "00073_inventory_wrong_blk.sql: inventory's file in block",
		"00071_calendar_prefix_contract.sql: number 00071 already used"}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d: %v", len(errs), len(want), errs)
	}
	for _, w := range want {
		if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), w) }) {
			t.Errorf("no error %q among %v", w, errs)
		}
	}
}
