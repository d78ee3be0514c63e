package ops_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"marquee/app"
	"marquee/modules/ops/opsbench"
)

// A simulated show: 30,000 entries through four gates and 5,000 exits
// through two, over three hours, each counter reporting its cumulative
// count once a minute; one entry counter resets once; 1% of readings are
// delivered twice and 1% a minute late. After every minute the zone's count
// must be what the counters said at most five minutes ago (the stated
// freshness), and at the end equal the truth exactly.
func TestOccupancyAccuracyUnderSimulatedShow(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-hour show, simulated")
	}
	start := time.Now().UTC().Truncate(time.Minute)
	clk := newClock(start)
	e := startEnv(t, clk)
	c := newChain(t, e, "accuracy")
	mustStatus(t, c.do(t, "PUT", "/api/v1/events/"+c.event+"/occupancy/zones", map[string]any{"zones": []any{
		map[string]any{"name": "Arena", "capacity": 40000, "door_zone": "-"}}}), http.StatusOK)
	svc, ctx := e.mod.Service(), context.Background()
	ev := app.EventInfo{ID: uuid.MustParse(c.event), VenueID: uuid.MustParse(c.venue), StartsAt: start, EndsAt: start.Add(4 * time.Hour)}

	res, err := opsbench.Accuracy(ctx, svc, c.t, ev, start, clk.set)
	if err != nil {
		t.Fatal(err)
	}
	if res.OutOfBounds != 0 {
		t.Fatalf("%d minutes outside the stated freshness; first %s", res.OutOfBounds, res.FirstMiss)
	}
	if res.FinalInside != res.Truth {
		t.Fatalf("end: dashboard %d, truth %d", res.FinalInside, res.Truth)
	}
	t.Log(res)
}
