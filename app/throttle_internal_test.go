package app

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is an accelerator: when it does not answer, a sign-in goes ahead
// (unthrottled) instead of failing.
func TestSignInWithoutRedisGoesAhead(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	a := &App{Redis: rdb, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), clock: time.Now}
	at, err := a.beginSignIn(t.Context(), "tenant:x", "owner@x.test", "203.0.113.1")
	if err != nil || at == nil || at.counted {
		t.Fatalf("without Redis: %+v, %v", at, err)
	}
	a.signInSucceeded(t.Context(), at)
	a.signInFailed(t.Context(), nil, [16]byte{}, at)
}

func TestAlarmingPoints(t *testing.T) {
	var got []int64
	for n := int64(1); n <= 100; n++ {
		if alarming(n, 5) {
			got = append(got, n)
		}
	}
	if want := []int64{5, 10, 20, 40, 80}; !slices.Equal(got, want) {
		t.Fatalf("alarming at %v, want %v", got, want)
	}
}
