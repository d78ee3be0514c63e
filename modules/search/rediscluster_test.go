package search_test

import (
	"context"
	"net/http"
	"testing"

	"marquee/app/apptest"
	"marquee/modules/search"
)

// Trending on a three-node Redis Cluster: sales counted in the chain's
// hourly sets rank through one ZUNION of the 24 hours, and the rebuild
// rewrites them and its marker in one transaction. Both need the chain's
// keys in one slot (its hash tag); across slots the cluster refuses them.
func TestTrendingOnRedisCluster(t *testing.T) {
	cluster := apptest.RedisCluster(t)
	e := startEnv(t, apptest.OnRedisCluster(cluster))
	c := seedCatalogue(t, e)
	c.sell(t, "metallica", 3)
	c.sell(t, "sigur", 1)
	trending := func() []search.TrendingItem {
		res := e.Do(t, http.MethodGet, c.t.Slug, "/api/v1/search/trending", "", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("trending: %d %s", res.Status, res.Body)
		}
		return apptest.Decode[struct{ Items []search.TrendingItem }](t, res.Body).Items
	}
	check := func(when string) {
		t.Helper()
		items := trending()
		if len(items) != 2 || items[0].EventID.String() != c.events["metallica"] || items[0].Sold24h != 3 ||
			items[1].EventID.String() != c.events["sigur"] || items[1].Sold24h != 1 {
			t.Fatalf("%s: trending %+v, want metallica (3) then sigur (1)", when, items)
		}
	}
	check("counted on sale")
	if err := e.srch.Service().RebuildTrending(context.Background(), c.t); err != nil {
		t.Fatalf("rebuild on the cluster: %v", err)
	}
	check("after a rebuild from the database")
}
