package ops

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"marquee/app/apptest"
	"marquee/tenants"
)

// The publish script takes an event's sequence, history and channel at
// once: on a Redis Cluster they must share a slot, for any chain and event.
func TestLiveKeysShareOneSlot(t *testing.T) {
	h := &Hub{key: func(parts ...string) string { return "deploy-1:" + strings.Join(parts, ":") }}
	for i := range 20 {
		seq, hist, ch := h.keys(tenants.Tenant{Slug: fmt.Sprintf("chain-%d", i)}, uuid.Must(uuid.NewV7()))
		apptest.OneSlot(t, "publish script", seq, hist, ch)
		for _, k := range []string{seq, hist, ch} {
			if !strings.HasPrefix(k, "deploy-1:ops:live:{") {
				t.Fatalf("key %q: want the deployment's prefix, then the event's tag", k)
			}
		}
	}
}
