package queue

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The front learns at once: the admitter publishes every admission step's
// tickets on the room's channel (Redis pub/sub, so a buyer waiting on any
// server instance hears it), and a status request that asks to wait
// (?wait=N) is answered the moment its ticket is among them. Each instance
// holds one subscription per room while someone waits on it, not one per
// buyer. A lost message only costs the wait: the request answers at its
// deadline with the status read again, and the buyer asks again.

// MaxWait bounds how long one status request may wait for admission.
const MaxWait = 25 * time.Second

// maxWaiters bounds the buyers one instance keeps waiting at once (one
// goroutine and one open connection each); beyond it a status request is
// answered at once, and the buyer falls back to polling.
const maxWaiters = 20000

type waiter struct{ admitted chan struct{} }

type roomTopic struct {
	sub     *redis.PubSub
	ready   chan struct{}
	err     error
	waiters map[string]map[*waiter]struct{} // ticket → those waiting on it
}

// notifier fans one Redis subscription per room out to the requests waiting
// on this instance.
type notifier struct {
	rdb    redis.UniversalClient
	mu     sync.Mutex
	topics map[string]*roomTopic // channel → topic
	count  int
}

func newNotifier(rdb redis.UniversalClient) *notifier {
	return &notifier{rdb: rdb, topics: map[string]*roomTopic{}}
}

// admittedChannel is the room's pub/sub channel of admitted tickets.
func (k keys) admittedChannel() string { return k.seq[:len(k.seq)-len("seq")] + "admitted" }

// wait registers a waiter for ticket on channel and returns once the room's
// subscription is confirmed, so an admission published after it returns is
// heard. done must be called when the waiter stops waiting.
func (n *notifier) wait(ctx context.Context, channel, ticket string) (w *waiter, done func(), err error) {
	n.mu.Lock()
	if n.count >= maxWaiters {
		n.mu.Unlock()
		return nil, nil, errTooManyWaiters
	}
	tp := n.topics[channel]
	if tp == nil {
		// The subscription lives as long as its waiters, not the request
		// that opened it.
		tp = &roomTopic{sub: n.rdb.Subscribe(context.Background(), channel), ready: make(chan struct{}), waiters: map[string]map[*waiter]struct{}{}}
		n.topics[channel] = tp
		go n.run(channel, tp)
	}
	w = &waiter{admitted: make(chan struct{})}
	if tp.waiters[ticket] == nil {
		tp.waiters[ticket] = map[*waiter]struct{}{}
	}
	tp.waiters[ticket][w] = struct{}{}
	n.count++
	n.mu.Unlock()
	done = func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := tp.waiters[ticket][w]; !ok {
			return
		}
		delete(tp.waiters[ticket], w)
		if len(tp.waiters[ticket]) == 0 {
			delete(tp.waiters, ticket)
		}
		n.count--
		if len(tp.waiters) == 0 && n.topics[channel] == tp {
			delete(n.topics, channel)
			_ = tp.sub.Close()
		}
	}
	select {
	case <-tp.ready:
		if tp.err != nil {
			done()
			return nil, nil, tp.err
		}
		return w, done, nil
	case <-ctx.Done():
		done()
		return nil, nil, ctx.Err()
	}
}

type tooManyWaiters struct{}

func (tooManyWaiters) Error() string { return "too many buyers waiting on this instance" }

var errTooManyWaiters error = tooManyWaiters{}

// run confirms a room's subscription, then wakes the waiters of each
// admitted ticket. A message is the admitted tickets, comma-separated.
func (n *notifier) run(channel string, tp *roomTopic) {
	ctx, cancel := context.WithTimeout(context.Background(), redisBudget)
	_, err := tp.sub.Receive(ctx)
	cancel()
	if err != nil {
		tp.err = err
		close(tp.ready)
		n.mu.Lock()
		if n.topics[channel] == tp {
			delete(n.topics, channel)
		}
		n.mu.Unlock()
		_ = tp.sub.Close()
		return
	}
	close(tp.ready)
	for msg := range tp.sub.Channel(redis.WithChannelSize(1024)) {
		n.mu.Lock()
		for _, ticket := range strings.Split(msg.Payload, ",") {
			for w := range tp.waiters[ticket] {
				close(w.admitted)
				delete(tp.waiters[ticket], w)
				n.count--
			}
			delete(tp.waiters, ticket)
		}
		if len(tp.waiters) == 0 && n.topics[channel] == tp {
			delete(n.topics, channel)
			_ = tp.sub.Close()
		}
		n.mu.Unlock()
	}
}

// Waiting is how many status requests wait for admission on this instance.
func (r *Room) Waiting() int {
	r.waits.mu.Lock()
	defer r.waits.mu.Unlock()
	return r.waits.count
}
