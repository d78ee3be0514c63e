package policies

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// policyChannel carries "policy changed" notices between the server
// instances of a deployment (after its prefix).
const policyChannel = "policy:changed"

// redisWatcher implements casbin's persist.Watcher over Redis pub/sub.
type redisWatcher struct {
	rdb      *redis.Client
	channel  string
	sub      *redis.PubSub
	id       string
	log      *slog.Logger
	callback atomic.Pointer[func(string)]
	cancel   context.CancelFunc
}

func newRedisWatcher(ctx context.Context, rdb *redis.Client, deployment string, log *slog.Logger) (*redisWatcher, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	channel := deployment + ":" + policyChannel
	sub := rdb.Subscribe(ctx, channel)
	if _, err := sub.Receive(ctx); err != nil {
		cancel()
		sub.Close()
		return nil, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	w := &redisWatcher{rdb: rdb, channel: channel, sub: sub, id: uuid.NewString(), log: log, cancel: cancel}
	go w.listen(ctx)
	return w, nil
}

func (w *redisWatcher) listen(ctx context.Context) {
	ch := w.sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			// Our own changes are already in memory.
			if cb := w.callback.Load(); msg.Payload != w.id && cb != nil {
				(*cb)(msg.Payload)
			}
		}
	}
}

// SetUpdateCallback is called by casbin with the reload function.
func (w *redisWatcher) SetUpdateCallback(fn func(string)) error {
	w.callback.Store(&fn)
	return nil
}

// Update announces a local policy change to the other instances.
func (w *redisWatcher) Update() error {
	if err := w.rdb.Publish(context.Background(), w.channel, w.id).Err(); err != nil {
		w.log.Warn("policy change not broadcast; other instances keep stale policy until restart", "err", err)
		return err
	}
	return nil
}

// Close stops listening.
func (w *redisWatcher) Close() {
	w.cancel()
	w.sub.Close()
}
