package limits

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"marquee/app/apptest"
)

// 200 goroutines ask one key's rate (50 a minute) at once through the
// pipelined door, and 200 more ask 200 keys of their own: exactly 50 of the
// first are let through (the pipeline keeps redis_rate's answers apart and
// in order), all of the second, and far fewer round trips than calls were
// made.
func TestPipelinedRateChecksUnderRace(t *testing.T) {
	opts, err := redis.ParseURL(apptest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis: %v", err)
	}
	door := newPipelinedScripts(rdb)
	var flushes atomic.Int64
	rdb.AddHook(countPipelines{&flushes})
	rl := redis_rate.NewLimiter(door)
	ctx := context.Background()
	shared := "test-pipeline-" + uuid.NewString()
	var allowed, own, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := shared
			if i%2 == 1 {
				key = shared + "-" + uuid.NewString()
			}
			res, err := rl.Allow(ctx, key, redis_rate.PerMinute(50))
			switch {
			case err != nil:
				failed.Add(1)
			case res.Allowed == 1 && key == shared:
				allowed.Add(1)
			case res.Allowed == 1:
				own.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || allowed.Load() != 50 || own.Load() != 200 {
		t.Fatalf("errors %d, shared key allowed %d (want 50), own keys allowed %d (want 200)", failed.Load(), allowed.Load(), own.Load())
	}
	if n := flushes.Load(); n >= 400 || n == 0 {
		t.Fatalf("%d pipelines for 400 checks", n)
	}
	t.Logf("400 checks in %d pipelines", flushes.Load())
}

type countPipelines struct{ n *atomic.Int64 }

func (countPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (countPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c countPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}
