// Command marquee is the whole platform in one binary: the API and pages, the
// job worker, migrations, tenant management and a populated demo.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"marquee/app"
	"marquee/config"
	"marquee/internal/channelsbench"
	"marquee/internal/fleetbench"
	"marquee/internal/mailcatch"
	"marquee/internal/searchbench"
	"marquee/migrations"
	"marquee/modules"
	"marquee/modules/booking/esignfake"
	"marquee/modules/integrations"
	"marquee/modules/inventory"
	"marquee/modules/inventory/bench"
	"marquee/modules/ops"
	"marquee/modules/ops/opsbench"
	"marquee/modules/search"
	"marquee/modules/staffing"
	"marquee/modules/staffing/stormbench"
	"marquee/tenants"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "marquee:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:           "marquee",
		Short:         "Marquee: the platform for concert-venue chains",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.AddCommand(serveCmd(), workerCmd(), migrateCmd(), tenantCmd(), demoCmd(), ledgerCmd(), benchCmd(), integrationsCmd())
	return cmd
}

// open loads the configuration and builds the App with every module.
func open(ctx context.Context) (*app.App, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	return app.New(ctx, cfg, app.Options{}, modules.All()...)
}

// openServing is open for the long-running roles (serve, worker), which
// refuse the public development secrets unless in development mode.
func openServing(ctx context.Context) (*app.App, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckServing(); err != nil {
		return nil, fmt.Errorf("refusing to start with development secrets:\n%w", err)
	}
	return app.New(ctx, cfg, app.Options{}, modules.All()...)
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the API, portal, storefront and console",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openServing(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			ln, err := a.Listen()
			if err != nil {
				return err
			}
			a.Log.Info("serving", "addr", ln.Addr().String())
			return a.Serve(cmd.Context(), ln)
		},
	}
}

func workerCmd() *cobra.Command {
	var scheduler bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run background jobs (and the periodic scheduler)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openServing(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			a.Log.Info("worker running", "scheduler", scheduler)
			return a.RunWorker(cmd.Context(), scheduler)
		},
	}
	cmd.Flags().BoolVar(&scheduler, "scheduler", true, "also run the periodic scheduler (exactly one per deployment)")
	return cmd
}

func migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the database if missing, then migrate the control schema and every tenant schema (resumable)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			if err := app.EnsureDatabase(cmd.Context(), cfg.DatabaseURL); err != nil {
				return err
			}
			for name, url := range cfg.DatabaseServers {
				if err := app.EnsureDatabase(cmd.Context(), url); err != nil {
					return fmt.Errorf("database server %s: %w", name, err)
				}
			}
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			fmt.Println("control schema: up to date")
			return migrateAll(cmd.Context(), a)
		},
	}
}

func migrateAll(ctx context.Context, a *app.App) error {
	err := a.MigrateAll(ctx, func(done, total int, r migrations.Result) {
		status := "ok"
		if r.Err != nil {
			status = "FAILED: " + r.Err.Error()
		}
		fmt.Printf("tenant %d of %d  %-30s applied %d in %s  %s\n", done, total, r.Schema, r.Applied, r.Duration.Round(1e6), status)
	})
	if err != nil {
		return fmt.Errorf("some tenant schemas failed; fix the cause and run migrate again to resume:\n%w", err)
	}
	return nil
}

func tenantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants (venue chains)"}
	var name, ownerEmail, server string
	create := &cobra.Command{
		Use:   "create <slug>",
		Short: "Create a tenant, migrate its schema and add its owner (password from MARQUEE_OWNER_PASSWORD)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw := os.Getenv("MARQUEE_OWNER_PASSWORD")
			if ownerEmail == "" || pw == "" {
				return errors.New("--owner-email and MARQUEE_OWNER_PASSWORD are required")
			}
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			t, err := a.CreateTenantOn(cmd.Context(), args[0], name, server, ownerEmail, "Owner", pw)
			if err != nil {
				return err
			}
			fmt.Printf("created %s (schema %s on server %s), owner %s\n", t.Slug, t.Schema, t.Server, ownerEmail)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&ownerEmail, "owner-email", "", "email of the first owner")
	create.Flags().StringVar(&server, "server", "", "database server to place it on (default: the one with the fewest tenants)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			ts, err := a.Tenants.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SLUG\tNAME\tSTATUS\tSERVER\tSCHEMA\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Name, t.Status, t.Server, t.Schema, t.CreatedAt.UTC().Format("2006-01-02 15:04"))
			}
			return w.Flush()
		},
	}
	status := func(use, short string, suspend bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " <slug>", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, err := open(cmd.Context())
				if err != nil {
					return err
				}
				defer a.Close()
				if suspend {
					err = a.Tenants.Suspend(cmd.Context(), args[0])
				} else {
					err = a.Tenants.Resume(cmd.Context(), args[0])
				}
				if err == nil {
					fmt.Printf("%s: %sd\n", args[0], use)
				}
				return err
			},
		}
	}
	cmd.AddCommand(create, list, moveCmd(), deleteCmd(), status("suspend", "Suspend a tenant everywhere at once", true), status("resume", "Resume a suspended tenant", false))
	return cmd
}

func deleteCmd() *cobra.Command {
	var reason string
	var after time.Duration
	var cancel, complete bool
	cmd := &cobra.Command{
		Use:   "delete <slug> --reason R [--after 72h] | --cancel | --complete",
		Short: "Delete a tenant in two steps: a request stops serving it at once; once --after has passed, --complete drops its schema and control-plane records (--cancel takes the request back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cancel && complete {
				return errors.New("--cancel and --complete exclude each other")
			}
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			ch := tenants.Change{Actor: "cli:" + os.Getenv("USER"), Reason: reason}
			switch {
			case cancel:
				if err := a.Tenants.CancelDeletion(cmd.Context(), args[0], ch); err != nil {
					return err
				}
				fmt.Printf("deletion of %s cancelled; it stays suspended (marquee tenant resume %s serves it again)\n", args[0], args[0])
			case complete:
				if err := a.CompleteTenantDeletion(cmd.Context(), args[0], ch); err != nil {
					return err
				}
				fmt.Printf("deleted %s: schema and the copies its moves left dropped, files, rules and sessions removed; its slug stays reserved\n", args[0])
			default:
				due, err := a.Tenants.RequestDeletion(cmd.Context(), args[0], after, ch)
				if err != nil {
					return err
				}
				fmt.Printf("%s is no longer served; complete the deletion after %s with: marquee tenant delete %s --complete\n", args[0], due.UTC().Format(time.RFC3339), args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the status history and audit log)")
	cmd.Flags().DurationVar(&after, "after", 72*time.Hour, "earliest deletion, from now (at least 24h)")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "take back a deletion request")
	cmd.Flags().BoolVar(&complete, "complete", false, "delete now that the request is due")
	return cmd
}

func moveCmd() *cobra.Command {
	var to, reason string
	var logical, recoverMove bool
	cmd := &cobra.Command{
		Use:   "move <slug> --to <server> | --recover",
		Short: "Move a tenant's schema to another database server (it answers 503 with Retry-After meanwhile)",
		Long: `Suspends the tenant for maintenance (its requests answer 503 with Retry-After),
waits for its in-flight writes, copies its schema to the target server
(pg_dump | pg_restore in one transaction, or a logical copy), verifies every
table's row count and the ledger's hash chain there, then points the registry
at the target and resumes it. On any failure it stays on its source, resumed,
with nothing lost. The source schema is kept, renamed <schema>__moved_<time>,
for the operator to drop.

Should the move's process die, the tenant stays "moving" (503):
--recover takes the move's lock (refused while a live move holds it) and
either undoes the move (the source was not switched yet: the copy goes, the
tenant is served from its source as before) or finishes it (the source was
already renamed away: the copy is checked again and the registry switched).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if recoverMove {
				if to != "" {
					return errors.New("--recover finishes or undoes the move that died: it takes no --to")
				}
				a, err := open(cmd.Context())
				if err != nil {
					return err
				}
				defer a.Close()
				rep, err := a.RecoverTenantMove(cmd.Context(), args[0], "cli:"+os.Getenv("USER"), reason, tenants.RecoverOptions{})
				if err != nil {
					return err
				}
				fmt.Printf("%s: the move %s → %s (died after %q) is %s; it is %s on %s\n", args[0], rep.From, rep.To, rep.Phase, rep.Outcome, rep.Status, rep.Server)
				if rep.Backup != "" {
					fmt.Printf("%s: the source schema is kept on %s as %s\n", args[0], rep.From, rep.Backup)
				}
				return nil
			}
			if to == "" {
				return errors.New("--to <server> is required (a name from MARQUEE_DATABASE_SERVERS, or default)")
			}
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			actor := "cli:" + os.Getenv("USER")
			rep, err := a.MoveTenant(cmd.Context(), args[0], to, actor, reason, tenants.MoveOptions{
				Logical:  logical,
				Progress: func(step string) { fmt.Printf("%s: %s\n", args[0], step) },
			})
			if err != nil {
				return err
			}
			var rows int64
			for _, n := range rep.Rows {
				rows += n
			}
			fmt.Printf("%s: moved from %s to %s (%s) in %s: %d tables, %d rows verified; the source schema is kept as %s\n",
				args[0], rep.From, rep.To, rep.Method, rep.Duration.Round(1e6), len(rep.Rows), rows, rep.Backup)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target database server")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the status history)")
	cmd.Flags().BoolVar(&logical, "logical", false, "copy table by table even when pg_dump and pg_restore are installed")
	cmd.Flags().BoolVar(&recoverMove, "recover", false, "end a move whose process died: undo it, or finish its switch")
	return cmd
}

func ledgerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ledger", Short: "Audit ledger tools"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify <slug>",
		Short: "Recompute a tenant's ledger hash chain and report the first broken entry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer a.Close()
			t, err := a.Tenants.Lookup(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			res, err := a.Ledger.Verify(cmd.Context(), t)
			if err != nil {
				return err
			}
			if !res.OK {
				return fmt.Errorf("ledger of %s is BROKEN at entry %d (%s) after %d entries", t.Slug, res.BrokenAt, res.Reason, res.Entries)
			}
			fmt.Printf("ledger of %s verifies: %d entries\n", t.Slug, res.Entries)
			return nil
		},
	})
	return cmd
}

func demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Create, migrate and seed the demo database, then serve it with an in-process worker",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			cfg.Development = true // a demo on this machine: development secrets and test-mode payments
			if cfg.StripeAPIURL == "" && cfg.StripeSecretKey == config.DevStripeSecretKey {
				// Test-mode keys and no Stripe URL: pay against the local stripe-mock.
				cfg.StripeAPIURL = localStripeMock
			}
			if cfg.SMTPURL == "" {
				// No mail server: a local catcher takes the demo's mail
				// (bounce.invalid and tempfail.invalid addresses are refused).
				catcher, err := mailcatch.Start("127.0.0.1:0")
				if err != nil {
					return err
				}
				defer func() { _ = catcher.Close() }()
				cfg.SMTPURL = catcher.URL()
				fmt.Printf("  mail goes to a local SMTP catcher at %s (set MARQUEE_SMTP_URL for another server, e.g. mailpit from deployments/local/services.sh)\n", catcher.Addr())
			}
			var esign *esignfake.Server
			if cfg.ESignURL == "" {
				// No e-signature provider: a local fake shaped like DocuSign
				// takes the demo's envelopes and signs them for both parties.
				key := make([]byte, 32)
				if _, err := rand.Read(key); err != nil {
					return err
				}
				connectKey := hex.EncodeToString(key)
				esign, err = esignfake.Start("127.0.0.1:0", "demo-account", "demo-token", []byte(connectKey))
				if err != nil {
					return err
				}
				defer func() { _ = esign.Close() }()
				esign.AutoComplete = true
				cfg.ESignURL, cfg.ESignAccountID, cfg.ESignToken, cfg.ESignConnectKeys = esign.URL(), "demo-account", "demo-token", []string{connectKey}
				fmt.Printf("  contracts sent for e-signature go to a local fake provider at %s that signs for both parties (set MARQUEE_ESIGN_URL for a real one)\n", esign.URL())
			}
			if cfg.WalletCertFile == "" {
				dir, err := os.MkdirTemp("", "marquee-demo-wallet-")
				if err != nil {
					return err
				}
				defer func() { _ = os.RemoveAll(dir) }()
				if err := inventory.DevWallet(dir, &cfg); err != nil {
					return err
				}
				fmt.Println("  wallet passes are signed with throwaway demo certificates (they install on no real phone)")
			}
			if err := app.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
				return err
			}
			a, err := app.New(ctx, cfg, app.Options{}, modules.All()...)
			if err != nil {
				return err
			}
			defer a.Close()
			if err := migrateAll(ctx, a); err != nil {
				return err
			}
			chains, err := a.SeedDemo(ctx)
			if err != nil {
				return err
			}
			ln, err := a.Listen()
			if err != nil {
				return err
			}
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			if esign != nil {
				esign.OnError = func(err error) { a.Log.Warn("demo e-signature provider: delivery failed", "err", err) }
				esign.DeliverTo("http://"+ln.Addr().String()+"/api/v1/booking/esign/connect",
					func(tenant string) string { return tenant + "." + cfg.BaseDomain + ":" + port })
			}
			fmt.Printf("\nMarquee demo is up.\n\n")
			for _, ch := range chains {
				fmt.Printf("  %-8s portal     http://%s.%s:%s/portal   (%s / %s)\n", ch.Tenant.Slug, ch.Tenant.Slug, cfg.BaseDomain, port, ch.Owner, app.DemoPassword)
				fmt.Printf("  %-8s storefront http://%s.%s:%s/\n", "", ch.Tenant.Slug, cfg.BaseDomain, port)
			}
			fmt.Printf("  console           http://%s:%s/console  (%s / %s)\n", cfg.BaseDomain, port, app.DemoSupportEmail, app.DemoPassword)
			fmt.Printf("  API               http://%s:%s/api/v1/openapi.json with header X-Tenant: acme\n\n", cfg.BaseDomain, port)
			if cfg.UsesDevSecret() {
				fmt.Println("  (using the built-in development secret: set MARQUEE_SECRET_KEY outside the demo)")
			}
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return a.Serve(gctx, ln) })
			g.Go(func() error { return a.RunWorker(gctx, true) })
			return g.Wait()
		},
	}
}

// localStripeMock is where deployments/local/services.sh runs stripe-mock.
const localStripeMock = "http://127.0.0.1:12111"

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load harnesses"}
	o := bench.Defaults()
	var target string
	onsale := &cobra.Command{
		Use:   "onsale",
		Short: "A flash on-sale end to end (waiting room, holds, orders, payment webhooks) against a server started on loopback, or a running one (--target)",
		Long: `Starts a server and worker on 127.0.0.1 over a database of its own (the configured
database name with "_bench" appended; created and migrated) and a Redis database
of its own (number 14 on the configured server, emptied when a run starts, so
the expiry tasks of an earlier run's holds do not load this one), creates a bench
tenant and an on-sale event, and drives virtual buyers over HTTP. It needs
stripe-mock (deployments/local/services.sh --for-tests); MARQUEE_STRIPE_API_URL
defaults to http://127.0.0.1:12111 here.

With --target URL it starts nothing and drives the deployment at URL instead,
over this process's configuration, which must be that deployment's (database,
Redis, base domain, webhook secret, MARQUEE_STRIPE_API_URL naming the
stripe-mock it uses): this process creates the run's tenants, checks the
database and measures the raw baseline; the deployment's worker admits from
the waiting room. Its Redis database is not emptied.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchServer(cmd.Context(), target, o.DBConns, func(ctx context.Context, a *app.App, base string) error {
				_, err := bench.Run(ctx, a, base, o, os.Stdout, os.Stderr)
				return err
			})
		},
	}
	f := onsale.Flags()
	f.StringVar(&target, "target", "", "drive the deployment already running at this URL (same configuration) instead of starting one")
	f.IntVar(&o.Seats, "seats", o.Seats, "reserved seats")
	f.IntVar(&o.GA, "ga", o.GA, "general-admission tickets")
	f.IntVar(&o.Buyers, "buyers", o.Buyers, "virtual buyers")
	f.BoolVar(&o.Limits, "limits", o.Limits, "turn the chain's limits on (per-IP rates on holds and orders, the checkout rule engine)")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "HTTP requests of the buying path (hold, order, payment) in flight at once")
	f.IntVar(&o.QueueConcurrency, "queue-concurrency", o.QueueConcurrency, "HTTP requests of the waiting room (buyer session, join, poll) in flight at once, apart from the buying path's")
	f.Float64Var(&o.Abandon, "abandon", o.Abandon, "share of buyers who release their hold instead of paying")
	f.Float64Var(&o.WalkAway, "walk-away", o.WalkAway, "share of buyers who leave their hold to expire (with --hold-minutes 1 the run measures expiry lateness)")
	f.IntVar(&o.HoldMinutes, "hold-minutes", o.HoldMinutes, "how long a hold lasts")
	f.BoolVar(&o.E2E, "e2e", o.E2E, "after the hold saturation phase, whole purchases (hold, order, signed webhook) through the API against the same writes straight at PostgreSQL, with a CPU profile and database wait samples")
	f.BoolVar(&o.Adaptive, "adaptive", o.Adaptive, "the waiting room adapts its rate and cap to the measured latency (--admit-rate and --max-active are then ceilings)")
	f.BoolVar(&o.LongPoll, "long-poll", o.LongPoll, "buyers at the front of the queue wait on the status route (?wait=20) instead of polling every second")
	f.BoolVar(&o.ClientLeave, "client-leave", o.ClientLeave, "buyers leave the waiting room themselves when done (false: only the server frees their slot)")
	f.DurationVar(&o.Think, "think", o.Think, "pause between hold and order")
	f.DurationVar(&o.Arrival, "arrival", o.Arrival, "buyers arrive spread over this window")
	f.DurationVar(&o.MaxDuration, "max-duration", o.MaxDuration, "stop buying after this")
	f.IntVar(&o.AdmitPerSecond, "admit-rate", o.AdmitPerSecond, "waiting-room admissions per second")
	f.IntVar(&o.MaxActive, "max-active", o.MaxActive, "waiting-room cap on buyers shopping at once")
	f.DurationVar(&o.Phase, "phase", o.Phase, "length of the saturation and raw phases")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server (and of the raw phase)")
	f.StringVar(&o.OutDir, "out", o.OutDir, "directory for the JSON report and the SVG chart")
	f.BoolVar(&o.Pricing, "pricing", o.Pricing, "tier fees and demand pricing in effect on every tier, the pricing job every second")
	cmd.AddCommand(onsale, limitsBenchCmd(), doorsCmd(), fleetCmd(), deliveryCmd(), searchBenchCmd(), channelsBenchCmd(), opsBenchCmd(), staffingBenchCmd())
	return cmd
}

func channelsBenchCmd() *cobra.Command {
	o := channelsbench.Defaults()
	dbConns := 30
	cmd := &cobra.Command{
		Use:   "channels",
		Short: "The storefront and two outside channels (fake Ticketmaster polled, fake Eventbrite by webhook) race for the last tickets of one event: zero oversell, sales/s per channel, channel sale → inventory p50/p99",
		Long: `Starts a server and worker on loopback over a database and Redis database of their
own (as bench onsale), creates a chain with a Ticketmaster and an Eventbrite
connector against fakes run in this process, and an event whose last --capacity
tickets are split into quotas (web, ticketmaster, eventbrite). Storefront buyers
take HTTP holds while buyers on both channels' sides buy past their quotas
(Ticketmaster orders read by two polling loops, Eventbrite orders delivered as
webhooks). It then checks, from the database, that no quota and not the capacity
was passed and that each channel's recorded orders equal its quota's sold
units, reconciles, and prints per channel the units sold per second, the time
from a sale on the channel to our inventory reflecting it (p50, p99) against a
quiet baseline of one sale at a time measured first, and the reconciliation's
deltas with their causes. It fails when an invariant does not hold. Progress
shows as a line redrawn on a terminal, a plain line every 5 s otherwise.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mods := modules.All()
			var im *integrations.Module
			for _, m := range mods {
				if x, ok := m.(*integrations.Module); ok {
					im = x
				}
			}
			return benchServerWith(cmd.Context(), "", dbConns, mods, func(ctx context.Context, a *app.App, base string) error {
				rep, err := channelsbench.Run(ctx, a, im.Service(), base, o, os.Stdout, os.Stderr)
				if err == nil && !rep.OK() {
					err = fmt.Errorf("the channels check failed")
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Capacity, "capacity", o.Capacity, "tickets of the event (all of them contested)")
	f.IntVar(&o.WebQuota, "web-quota", o.WebQuota, "the storefront's quota")
	f.IntVar(&o.TMQuota, "ticketmaster-quota", o.TMQuota, "Ticketmaster's quota (its allocation)")
	f.IntVar(&o.EBQuota, "eventbrite-quota", o.EBQuota, "Eventbrite's quota (its capacity)")
	f.IntVar(&o.WebBuyers, "web-buyers", o.WebBuyers, "storefront buyers, one ticket each")
	f.IntVar(&o.TMSales, "ticketmaster-sales", o.TMSales, "sales on Ticketmaster's side, one ticket each (past the quota: oversells)")
	f.IntVar(&o.EBSales, "eventbrite-sales", o.EBSales, "orders on Eventbrite's side, one ticket each")
	f.IntVar(&o.BaselineSales, "baseline", o.BaselineSales, "quiet sales per channel, one at a time, before the race")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "requests of the buyers and Eventbrite's deliveries in flight at once (a shed request is retried after its Retry-After)")
	f.DurationVar(&o.CatchUpTimeout, "catch-up", o.CatchUpTimeout, "the poller must have read every Ticketmaster order within this after the buyers are done")
	f.IntVar(&dbConns, "db-conns", dbConns, "database connections of the server")
	return cmd
}

func fleetCmd() *cobra.Command {
	o := fleetbench.Options{Parallel: 4, Requests: 20000, Sample: 50, Password: "fleet-owner-password-1"}
	sizes := "10,100,1000"
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Grow a fleet to 10, 100 and 1,000 tenants on a database of its own; time creating and migrating them and the per-request cost of tenant resolution and authorization at each size",
		Long: `Uses a database of its own (the configured name with "_fleet" appended; created
and migrated), and any further servers MARQUEE_DATABASE_SERVERS names (new
tenants spread over them). Tenants are named fleet-0001, fleet-0002, ...; a run
reuses those an earlier run created, so a stopped run resumes. For each size it
prints one line: the time to create the tenants missing (each schema created
and migrated), one migrate pass over every tenant, and in-process request
times: GET /api/v1/role-assignments as an owner (tenant resolution, bearer
token, Casbin, a handler that reads only policy) against GET /healthz, and the
registry lookup plus Casbin check alone. Progress shows only on a terminal.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			for _, s := range strings.Split(sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(s))
				if err != nil || n < 1 {
					return fmt.Errorf("--sizes %q: want ascending positive counts like 10,100,1000", sizes)
				}
				o.Sizes = append(o.Sizes, n)
			}
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			cfg.LogLevel = "warn"
			cfg.Development = true
			cfg.PasswordCost = 10 // owners of bench tenants; the figures are not about bcrypt
			if cfg.DatabaseURL, err = suffixDatabase(cfg.DatabaseURL, "_fleet"); err != nil {
				return err
			}
			if err := app.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
				return err
			}
			for name, url := range cfg.DatabaseServers {
				if err := app.EnsureDatabase(ctx, url); err != nil {
					return fmt.Errorf("database server %s: %w", name, err)
				}
			}
			a, err := app.New(ctx, cfg, app.Options{}, modules.All()...)
			if err != nil {
				return err
			}
			defer a.Close()
			o.Out, o.Progress = os.Stdout, os.Stderr
			_, err = fleetbench.Run(ctx, a, o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&sizes, "sizes", sizes, "fleet sizes to reach and measure, ascending")
	f.IntVar(&o.Parallel, "parallel", o.Parallel, "tenants created at once")
	f.IntVar(&o.Requests, "requests", o.Requests, "requests per measurement (each stops after 5 s)")
	f.IntVar(&o.Sample, "sample", o.Sample, "tenants the measured requests are spread over")
	return cmd
}

func doorsCmd() *cobra.Command {
	o := bench.DoorsDefaults()
	var target string
	var offline bool
	oo := bench.OfflineDefaults()
	doors := &cobra.Command{
		Use:   "doors",
		Short: "A night at the door: tickets sold, then scanned over HTTP by concurrent scanners (entries, exits, re-entries, duplicates), against the raw check-in statement and a database check",
		Long: `Sells --tickets tickets on three GA zones through the real buying path (orders of
100, signed payment webhooks; needs stripe-mock like bench onsale), then scans
every ticket over HTTP from --scanners concurrent scanners signed in as the
venue's door staff: every ticket enters, --exit-share go out and back in,
--dup-share are scanned again by a second device. It prints admits per second
and scan latencies, the same check-in statement run straight through the
tenant door on a second event of the same night (the raw baseline) and the
ratio, and a database check: nobody admitted twice without an exit between,
each ticket's state equal to its log, and per zone inside = entries - exits.
Server, database and Redis as for bench onsale (--target drives a running one).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if offline {
				oo.DBConns = o.DBConns
				return benchServer(cmd.Context(), target, oo.DBConns, func(ctx context.Context, a *app.App, base string) error {
					rep, err := bench.RunDoorsOffline(ctx, a, base, oo, os.Stdout, os.Stderr)
					if err == nil && !rep.OK {
						err = fmt.Errorf("the offline check failed")
					}
					return err
				})
			}
			return benchServer(cmd.Context(), target, o.DBConns, func(ctx context.Context, a *app.App, base string) error {
				rep, err := bench.RunDoors(ctx, a, base, o, os.Stdout, os.Stderr)
				if err == nil && !rep.Check.OK {
					err = fmt.Errorf("the database check failed")
				}
				return err
			})
		},
	}
	f := doors.Flags()
	f.StringVar(&target, "target", "", "drive the deployment already running at this URL (same configuration) instead of starting one")
	f.IntVar(&o.Tickets, "tickets", o.Tickets, "tickets of the night (50000 for a stadium)")
	f.IntVar(&o.Scanners, "scanners", o.Scanners, "scanning devices at once")
	f.Float64Var(&o.ExitShare, "exit-share", o.ExitShare, "share of holders who go out and come back in")
	f.Float64Var(&o.DupShare, "dup-share", o.DupShare, "share of tickets scanned again by a second device")
	f.IntVar(&o.Rate, "rate", o.Rate, "arrivals per second (0: as fast as the server answers)")
	f.BoolVar(&o.Arrivals, "arrivals", false, "a stadium night's arrival model instead of a flat one: --late-share of the holders in the last --late-window of the --open the doors are open, compressed into --run, with exits and re-entries through the night")
	f.DurationVar(&o.Run, "run", o.Run, "with --arrivals: the night compressed into this")
	f.DurationVar(&o.Open, "open", o.Open, "with --arrivals: how long the doors are open before the show (real time)")
	f.Float64Var(&o.LateShare, "late-share", o.LateShare, "with --arrivals: share of holders arriving in the last --late-window")
	f.DurationVar(&o.LateWindow, "late-window", o.LateWindow, "with --arrivals: the late window before the show (real time)")
	f.IntVar(&o.RawTickets, "raw-tickets", o.RawTickets, "tickets of the raw baseline's event (0: min(tickets, 10000))")
	f.DurationVar(&o.Phase, "phase", o.Phase, "the raw phase stops after this")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server (and of the raw phase)")
	f.StringVar(&o.CPUProfile, "cpu-profile", "", "write the CPU profile of the scanning phase (server and scanners) to this file")
	f.BoolVar(&offline, "offline", false, "measure offline scanning instead: manifest size and download time for --offline-tickets and --offline-small-tickets, and --devices × --device-scans offline scans synced at once with --planted conflicts")
	f.IntVar(&oo.Tickets, "offline-tickets", oo.Tickets, "with --offline: tickets of the big event")
	f.IntVar(&oo.SmallTickets, "offline-small-tickets", oo.SmallTickets, "with --offline: tickets of the second event (its manifest measured too)")
	f.IntVar(&oo.Devices, "devices", oo.Devices, "with --offline: offline devices syncing at once")
	f.IntVar(&oo.DeviceScans, "device-scans", oo.DeviceScans, "with --offline: offline scans per device")
	f.IntVar(&oo.Planted, "planted", oo.Planted, "with --offline: tickets two devices both admitted (conflicts to find)")
	f.IntVar(&oo.Batch, "batch", oo.Batch, "with --offline: scans per sync request (at most 1000)")
	return doors
}

func deliveryCmd() *cobra.Command {
	o := bench.DeliveryDefaults()
	cmd := &cobra.Command{
		Use:   "delivery",
		Short: "Pay many orders in a burst and time until every buyer has their tickets mail, PDF attached",
		Long: `Prepares --orders unpaid orders of one ticket (hold, order and PaymentIntent over
HTTP, against stripe-mock), pays them all at once with signed payment webhooks (a share
delivered twice), and waits until the in-process SMTP catcher the server sends to has one
mail with a PDF per order: the time from the burst to the last mail, mails per second, and a
check that no order was mailed twice. Database and Redis as for bench onsale.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			catcher, err := mailcatch.Start("127.0.0.1:0")
			if err != nil {
				return err
			}
			defer func() { _ = catcher.Close() }()
			// The bench's own server sends its mail to the catcher.
			if err := os.Setenv("MARQUEE_SMTP_URL", catcher.URL()); err != nil {
				return err
			}
			return benchServer(cmd.Context(), "", o.DBConns, func(ctx context.Context, a *app.App, base string) error {
				_, err := bench.RunDelivery(ctx, a, base, o, catcher, os.Stdout, os.Stderr)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Orders, "orders", o.Orders, "orders paid in the burst")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "requests in flight")
	f.Float64Var(&o.Replays, "replays", o.Replays, "share of payment webhooks delivered twice")
	f.DurationVar(&o.Timeout, "timeout", o.Timeout, "the mail must all arrive within it")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server")
	return cmd
}

// benchServer runs a bench: against the deployment at target, or against a
// server and worker it starts on loopback over a database and a Redis
// database of its own (the configured database name with "_bench"
// appended, created and migrated; Redis database 14, emptied).
func benchServer(ctx context.Context, target string, dbConns int, run func(ctx context.Context, a *app.App, base string) error) error {
	return benchServerWith(ctx, target, dbConns, modules.All(), run)
}

// benchServerWith is benchServer over the given modules (a bench that
// needs a module's service keeps the instance it passes).
func benchServerWith(ctx context.Context, target string, dbConns int, mods []app.Module, run func(ctx context.Context, a *app.App, base string) error) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	cfg.LogLevel = "warn"
	cfg.Development = true // signs its own webhooks; a --target deployment has its own secrets
	if target != "" {
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--target %q: want the deployment's base URL, like http://127.0.0.1:8080", target)
		}
	} else {
		if cfg.RedisCluster != "" {
			// A cluster has one database, and the bench empties the one it uses.
			return errors.New("a local bench empties a Redis database of its own, which a Redis Cluster does not have: unset MARQUEE_REDIS_CLUSTER (and use MARQUEE_REDIS_URL), or bench a running deployment with --target")
		}
		if cfg.DatabaseURL, err = suffixDatabase(cfg.DatabaseURL, "_bench"); err != nil {
			return err
		}
		if cfg.RedisURL, err = benchRedis(cfg.RedisURL); err != nil {
			return err
		}
		if cfg.StripeAPIURL == "" {
			cfg.StripeAPIURL = localStripeMock
		}
		if err := app.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	a, err := app.New(ctx, cfg, app.Options{DBMaxConns: dbConns}, mods...)
	if err != nil {
		return err
	}
	defer a.Close()
	if target != "" {
		return run(ctx, a, strings.TrimSuffix(target, "/"))
	}
	if err := a.Redis.FlushDB(ctx).Err(); err != nil {
		return err
	}
	if err := a.MigrateAll(ctx, nil); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srvCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(srvCtx)
	g.Go(func() error { return a.Serve(gctx, ln) })
	// With the scheduler: the expiry sweeps are part of what is measured.
	g.Go(func() error { return a.RunWorker(gctx, true) })
	runErr := run(ctx, a, "http://"+ln.Addr().String())
	stop()
	if err := g.Wait(); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// benchRedisDB is the Redis database bench runs own (the tests use 1 to 13).
const benchRedisDB = "14"

// benchRedis points a Redis URL at the bench's own database.
func benchRedis(redisURL string) (string, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		return "", fmt.Errorf("MARQUEE_REDIS_URL: %w", err)
	}
	u.Path = "/" + benchRedisDB
	return u.String(), nil
}

// suffixDatabase names a sibling database, so a bench never touches the demo.
func suffixDatabase(databaseURL, suffix string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("MARQUEE_DATABASE_URL: %w", err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + suffix
	return u.String(), nil
}

func integrationsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "integrations", Short: "Outside sales channels (Ticketmaster, Eventbrite)"}
	var slug string
	rotate := &cobra.Command{
		Use:   "rotate-key",
		Short: "Re-seal every channel connector's credentials under the next key generation of MARQUEE_SECRET_KEY",
		Long: `Each chain's connectors are re-sealed in one transaction (all or none). After
MARQUEE_SECRET_KEY changed, set MARQUEE_PREVIOUS_SECRET_KEY to the old secret
so that values sealed under it open; they are sealed under the new one.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			mods := modules.All()
			var im *integrations.Module
			for _, m := range mods {
				if x, ok := m.(*integrations.Module); ok {
					im = x
				}
			}
			a, err := app.New(ctx, cfg, app.Options{}, mods...)
			if err != nil {
				return err
			}
			defer a.Close()
			var ts []tenants.Tenant
			if slug != "" {
				t, err := a.Tenants.Lookup(ctx, slug)
				if err != nil {
					return err
				}
				ts = append(ts, t)
			} else if ts, err = a.Tenants.List(ctx); err != nil {
				return err
			}
			for _, t := range ts {
				n, kid, err := im.Service().RotateKeys(ctx, t, os.Getenv("MARQUEE_PREVIOUS_SECRET_KEY"))
				if err != nil {
					return fmt.Errorf("%s: %w", t.Slug, err)
				}
				fmt.Printf("%-20s %d connectors re-sealed under %s\n", t.Slug, n, kid)
			}
			return nil
		},
	}
	rotate.Flags().StringVar(&slug, "tenant", "", "only this chain (default: every chain)")
	cmd.AddCommand(rotate)
	return cmd
}

func opsBenchCmd() *cobra.Command {
	o := opsbench.Defaults()
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "ops",
		Short: "The live dashboard's figures: fan-out over two instances (SSE and WebSocket in one run), POS webhooks, occupancy accuracy",
		Long: `Starts two server instances on 127.0.0.1 over one database and Redis of their own (as
bench onsale) and a bench chain, then: --viewers dashboard viewers spread over both
instances read one event's stream while it publishes --rate updates a second for
--seconds, first over the SSE stream and then over the WebSocket (p50/p99/max
publish-to-receipt latency, lost updates by sequence number, heap per viewer, and
WebSocket over SSE); --sales POS payments, each created then completed, 5% redelivered
and 5% out of order, sent as signed Square webhooks by --senders senders (deliveries
per second, latency, the ledger exact); and a simulated three-hour show (30,000
entries, 5,000 exits, a counter reset, 1% duplicate and 1% late readings) checked
against the truth every minute.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every viewer connects from 127.0.0.1: the per-address bound on
			// open streams must let them all in.
			if os.Getenv("MARQUEE_STREAMS_PER_CLIENT") == "" {
				if err := os.Setenv("MARQUEE_STREAMS_PER_CLIENT", strconv.Itoa(o.Viewers+10)); err != nil {
					return err
				}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			mod := ops.New()
			mods := modules.All()
			for i, m := range mods {
				if m.Name() == mod.Name() {
					mods[i] = mod // the bench publishes through this instance's hub
				}
			}
			return benchServerWith(cmd.Context(), "", o.DBConns, mods, func(ctx context.Context, a *app.App, base string) error {
				// The second instance: the same database and Redis, its own hub.
				second, err := app.New(ctx, a.Config, app.Options{DBMaxConns: 10}, modules.All()...)
				if err != nil {
					return err
				}
				defer second.Close()
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				sctx, stop := context.WithCancel(ctx)
				served := make(chan error, 1)
				go func() { served <- second.Serve(sctx, ln) }()
				runErr := opsbench.Run(ctx, a, mod, []string{base, "http://" + ln.Addr().String()}, o, os.Stdout)
				stop()
				<-served
				return runErr
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Viewers, "viewers", o.Viewers, "dashboard viewers, spread over the two instances")
	f.IntVar(&o.Seconds, "seconds", o.Seconds, "seconds of updates per transport")
	f.IntVar(&o.Rate, "rate", o.Rate, "updates per second on the event")
	f.IntVar(&o.Sales, "sales", o.Sales, "POS payments (each created, then completed)")
	f.IntVar(&o.Senders, "senders", o.Senders, "POS deliveries in flight")
	f.BoolVar(&o.SkipFanout, "skip-fanout", o.SkipFanout, "leave out the fan-out")
	f.BoolVar(&o.SkipPOS, "skip-pos", o.SkipPOS, "leave out the POS webhooks")
	f.BoolVar(&o.SkipAccuracy, "skip-accuracy", o.SkipAccuracy, "leave out the simulated show")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the first instance")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (both instances and the clients: one process) to this file")
	return cmd
}

func staffingBenchCmd() *cobra.Command {
	o := stormbench.Defaults()
	cmd := &cobra.Command{
		Use:   "staffing",
		Short: "The sign-up storm: staff open their schedule and sign up for the same shifts at once, through the API against the same conditional insert run directly; assignments/s, ratio, p50/p99, database check",
		Long: `Starts a server and worker on loopback over a database and Redis database of their
own (as bench onsale), creates a chain with one event, an open bar role, --shifts
shifts of --places places on each of two published days (two-hour shifts in
overlapping hour slots) and --people staff members with a session each. Then
everyone opens their schedule at once (GET /api/v1/staffing/me), everyone signs
up at once through the API, trying up to --tries random shifts of the first day
until one takes them, and the same people try the second day's shifts with the
same conditional insert run directly through the tenant door (the person's row
lock, the statement, commit). It prints assignments per second of both, their
ratio (the issue's goal: at least 0.5), sign-up latencies (p50, p99), and a
database check: no shift over-filled and nobody on two overlapping shifts; it
fails when the check does. Progress shows only on a terminal.

The people arrive all at once; the chain's requests past the per-tenant bound
wait for a slot (MARQUEE_SHED_WAIT defaults to 60s here, and
MARQUEE_TENANT_MAX_INFLIGHT to --db-conns) as the direct phase's wait for a
connection, rather than being shed and retried after a second.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for name, value := range map[string]string{"MARQUEE_SHED_WAIT": "60s", "MARQUEE_TENANT_MAX_INFLIGHT": strconv.Itoa(o.DBConns),
				"MARQUEE_MAX_INFLIGHT": strconv.Itoa(max(128, 2*o.DBConns))} {
				if os.Getenv(name) == "" {
					if err := os.Setenv(name, value); err != nil {
						return err
					}
				}
			}
			mods := modules.All()
			var stf *staffing.Module
			for _, m := range mods {
				if s, ok := m.(*staffing.Module); ok {
					stf = s
				}
			}
			return benchServerWith(cmd.Context(), "", o.DBConns, mods, func(ctx context.Context, a *app.App, base string) error {
				rep, err := stormbench.Run(ctx, a, stf.Service(), base, o, os.Stdout, os.Stderr)
				if err == nil && !rep.OK() {
					err = fmt.Errorf("the sign-up storm's check failed")
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.People, "people", o.People, "staff members signing up at once")
	f.IntVar(&o.Shifts, "shifts", o.Shifts, "shifts of each phase (the API's day and the direct one's)")
	f.IntVar(&o.Places, "places", o.Places, "places per shift")
	f.IntVar(&o.Tries, "tries", o.Tries, "shifts each person tries until one takes them")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server (and of the direct phase)")
	return cmd
}

func limitsBenchCmd() *cobra.Command {
	o := bench.Defaults()
	o.Phase = 4 * time.Second
	rounds := 2
	var target string
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "What the chain's limits cost the hold path: holds/s at saturation with them off and on, in alternating phases of one run, and the ratio",
		Long: `Starts a server on 127.0.0.1 as bench onsale does (or drives --target), creates a chain,
and runs --rounds rounds of four phases (limits off, on, on, off), each --phase long on a fresh
event: --concurrency clients hold single seats through the API, every hold a new anonymous
buyer's from a new device token (as buyers each holding once: no hold joins a cart). With the
limits on (at the chain defaults), every hold checks the device's rate in Redis and counts
against the device's active-hold cap in the batch; no hold reaches a threshold, so the run
measures the checks, not refusals. Prints holds/s, p50/p99, refusals, shed requests and errors
per phase with the load average, and the ratio on/off (goal >= 0.9). It fails (exit status 1,
"bench limits invalid") as soon as a phase refuses a hold, asks for every seat of its event
before its time is up, or loses a request: its figures would then not be the limits' cost.
A CPU profile per phase is written to --out (limits-<round>-<phase>-<on|off>.pprof).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchServer(cmd.Context(), target, o.DBConns, func(ctx context.Context, a *app.App, base string) error {
				rep, err := bench.RunLimits(ctx, a, base, o, rounds, os.Stdout)
				if rep != nil {
					// An invalid run's report is written too: it says why.
					if werr := writeReport(o.OutDir, "limits.json", rep); err == nil {
						err = werr
					}
				}
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "drive the deployment already running at this URL (same configuration) instead of starting one")
	f.IntVar(&rounds, "rounds", rounds, "rounds of four phases (off, on, on, off)")
	f.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "clients holding at once")
	f.DurationVar(&o.Phase, "phase", o.Phase, "length of each phase")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server")
	f.StringVar(&o.OutDir, "out", o.OutDir, "directory for the JSON report")
	return cmd
}

func searchBenchCmd() *cobra.Command {
	o := searchbench.Defaults()
	var target string
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Storefront search at chain scale: p50/p99 of text, geo and combined queries through the API next to the same SQL run directly",
		Long: `Starts a server on 127.0.0.1 over a database of its own (as bench onsale does), creates a
chain with --venues venues × --per-venue upcoming events plus --past past events (written
in bulk into the calendar's tables), builds the search documents through the search
module's rebuild, then runs each query kind (text with typos, geo within 50 km sorted by
distance, text + geo + category + availability + price + dates) from --clients
concurrent clients for --phase through the API, and the very same statement through
the tenant door without HTTP, and prints p50/p99 and their ratio.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mods := modules.All()
			var srch *search.Module
			for _, m := range mods {
				if s, ok := m.(*search.Module); ok {
					srch = s
				}
			}
			return benchServerWith(cmd.Context(), target, o.DBConns, mods, func(ctx context.Context, a *app.App, base string) error {
				rep, err := searchbench.Run(ctx, a, srch.Service(), base, o, os.Stdout)
				if err != nil {
					return err
				}
				return writeReport(o.OutDir, "search.json", rep)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "drive the deployment already running at this URL (same configuration) instead of starting one")
	f.IntVar(&o.Venues, "venues", o.Venues, "venues of the chain")
	f.IntVar(&o.PerVenue, "per-venue", o.PerVenue, "upcoming events per venue")
	f.IntVar(&o.Past, "past", o.Past, "past events")
	f.IntVar(&o.Clients, "clients", o.Clients, "concurrent clients")
	f.DurationVar(&o.Phase, "phase", o.Phase, "length of each measured phase")
	f.IntVar(&o.DBConns, "db-conns", o.DBConns, "database connections of the server")
	f.StringVar(&o.OutDir, "out", o.OutDir, "directory for the JSON report")
	return cmd
}

// writeReport writes a bench's JSON report into dir and says where.
func writeReport(dir, name string, rep any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	fmt.Fprintf(os.Stdout, "report: %s\n", path)
	return os.WriteFile(path, raw, 0o644)
}
