package limits

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipelinedScripts is the limiter's door to Redis (what redis_rate calls
// its rediser): the script calls of concurrent requests go to Redis
// together, one pipeline per flush, as holds go to PostgreSQL in batches.
// A flush takes every call queued while the previous one was in flight, so
// a lone request waits for nothing and an on-sale's checks share round
// trips (the CPU profile of bench limits showed a write and a read system
// call per hold). Every other command goes straight to the client.
type pipelinedScripts struct {
	redis.UniversalClient

	mu       sync.Mutex
	queue    []*scriptCall
	flushing bool
}

type scriptCall struct {
	sha  string
	keys []string
	args []any
	done chan *redis.Cmd // buffered: the flusher never waits for a caller
}

// pipelineTimeout bounds one flush; it follows no caller's context.
const pipelineTimeout = 5 * time.Second

func newPipelinedScripts(rdb redis.UniversalClient) *pipelinedScripts {
	return &pipelinedScripts{UniversalClient: rdb}
}

// EvalSha queues the call for the next flush and waits for its answer (a
// NOSCRIPT answer makes redis_rate send the script itself with Eval).
func (p *pipelinedScripts) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	call := &scriptCall{sha: sha1, keys: keys, args: args, done: make(chan *redis.Cmd, 1)}
	p.mu.Lock()
	p.queue = append(p.queue, call)
	start := !p.flushing
	p.flushing = true
	p.mu.Unlock()
	if start {
		go p.flush()
	}
	select {
	case cmd := <-call.done:
		return cmd
	case <-ctx.Done():
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// flush sends what is queued, until nothing is.
func (p *pipelinedScripts) flush() {
	for {
		p.mu.Lock()
		calls := p.queue
		p.queue = nil
		if len(calls) == 0 {
			p.flushing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), pipelineTimeout)
		pipe := p.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = pipe.EvalSha(ctx, c.sha, c.keys, c.args...)
		}
		_, _ = pipe.Exec(ctx) // each command carries its own answer or error
		cancel()
		for i, c := range calls {
			c.done <- cmds[i]
		}
	}
}
