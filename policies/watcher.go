package policies

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// policyChannel carries "policy changed" notices between the server
// instances of a deployment (after its prefix).
const policyChannel = "policy:changed"

// redisWatcher tells the server instances of a deployment which chain's
// policy changed, over Redis pub/sub. A notice is "<instance id>\t<tenant>";
// a notice without a tenant (as an instance of the previous release sends)
// means every chain.
type redisWatcher struct {
	rdb      redis.UniversalClient
	channel  string
	sub      *redis.PubSub
	id       string
	log      *slog.Logger
	callback atomic.Pointer[func(string)]
	cancel   context.CancelFunc
}

func newRedisWatcher(ctx context.Context, rdb redis.UniversalClient, deployment string, log *slog.Logger) (*redisWatcher, error) {
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
			from, tenant, _ := strings.Cut(msg.Payload, "\t")
			// Our own changes are already in memory.
			if cb := w.callback.Load(); from != w.id && cb != nil {
				(*cb)(tenant)
			}
		}
	}
}

// onChange sets what runs when another instance changed a chain's policy
// (with the chain's slug, or "" for every chain).
func (w *redisWatcher) onChange(fn func(tenant string)) {
	w.callback.Store(&fn)
}

// announce tells the other instances that a chain's policy changed.
func (w *redisWatcher) announce(tenant string) error {
	if err := w.rdb.Publish(context.Background(), w.channel, w.id+"\t"+tenant).Err(); err != nil {
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
