package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"marquee/migrations"
)

// Serve answers HTTP on the configured address until ctx ends, then stops
// accepting connections and lets in-flight requests finish.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := a.HTTPServer()
	a.warmDatabasePool(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down: finishing in-flight requests", "grace", a.Config.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// HTTPServer is the server every listener of the App uses: slow clients are
// cut off (headers within 10 s, a body within MARQUEE_BODY_READ_TIMEOUT, an
// answer written within 60 s; event streams set their own write deadlines),
// and shutting it down ends the live streams at once.
func (a *App) HTTPServer() *http.Server {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       a.Config.BodyReadTimeout + 10*time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	srv.RegisterOnShutdown(a.drainStreams)
	return srv
}

// drainStreams tells every open event stream to end with a reconnect hint.
func (a *App) drainStreams() { a.drainingOnce.Do(func() { close(a.draining) }) }

// Listen opens the configured HTTP address.
func (a *App) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", a.Config.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (MARQUEE_HTTP_ADDR): %w", a.Config.HTTPAddr, err)
	}
	return ln, nil
}

// RunWorker processes tasks until ctx ends; with scheduler it also enqueues
// the periodic fan-outs (run exactly one scheduler per deployment).
func (a *App) RunWorker(ctx context.Context, scheduler bool) error {
	srv := a.Jobs.NewServer(a.Config.WorkerConcurrency)
	if err := srv.Start(a.Jobs.Mux()); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer srv.Shutdown()
	loops, cancelLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancelLoops()
		wg.Wait()
	}()
	for _, l := range a.background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runLoop(loops, l)
		}()
	}
	if scheduler {
		s, err := a.Jobs.NewScheduler()
		if err != nil {
			return err
		}
		if err := s.Start(); err != nil {
			return fmt.Errorf("start scheduler: %w", err)
		}
		defer s.Shutdown()
	}
	<-ctx.Done()
	return nil
}

// runLoop keeps a background loop alive: a loop that fails is logged and
// restarted after a pause, until the worker stops.
func (a *App) runLoop(ctx context.Context, l backgroundLoop) {
	for ctx.Err() == nil {
		err := l.run(ctx)
		if ctx.Err() != nil {
			return
		}
		a.Log.Error("background loop stopped; restarting", "loop", l.name, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// MigrateAll brings every tenant schema up to date, reporting progress.
func (a *App) MigrateAll(ctx context.Context, progress migrations.Progress) error {
	schemas, err := a.Tenants.Schemas(ctx)
	if err != nil {
		return err
	}
	return a.Migrator.AllPlaced(ctx, schemas, progress)
}

// warmDatabasePool opens the pool's connections before serving starts, so the
// first burst of traffic does not pay for opening them. It holds them all at
// once (the only way to make the pool open distinct ones), which is why it
// runs before any request is taken. One that cannot be had within the bound
// (the database slow, the pool in use by background work) is left to be
// opened on demand.
func (a *App) warmDatabasePool(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st := a.SQL.Stats()
	n := st.MaxOpenConnections - st.InUse // idle ones are taken too, then the rest opened
	conns := make([]*sql.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := a.SQL.Conn(ctx)
			if err == nil && c.PingContext(ctx) == nil {
				conns[i] = c
			} else if c != nil {
				c.Close()
			}
		})
	}
	wg.Wait()
	opened := 0
	for _, c := range conns {
		if c != nil {
			opened++
			c.Close() // back to the pool, idle and open
		}
	}
	a.Log.Info("database pool warmed", "opened", opened, "open", a.SQL.Stats().OpenConnections)
}
