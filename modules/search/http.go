package search

import (
	"strconv"

	"github.com/gin-gonic/gin"

	"marquee/app"
)

func (m *Module) search(c *gin.Context, _ app.None) (Results, error) {
	q, err := ParseQuery(c.Request.URL.Query())
	if err != nil {
		return Results{}, err
	}
	return m.svc.Search(c.Request.Context(), app.TenantOf(c), q, c.Query("cursor"))
}

func (m *Module) categories(c *gin.Context, _ app.None) (app.List[string], error) {
	cs, err := m.svc.Categories(c.Request.Context(), app.TenantOf(c))
	return app.List[string]{Items: app.NonNil(cs)}, err
}

func trendingLimit(c *gin.Context) (int, error) {
	limit := 8
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 20 {
			return 0, app.InvalidField("invalid_filter", "limit", "limit must be 1 to 20")
		}
		limit = n
	}
	return limit, nil
}

func (m *Module) trending(c *gin.Context, _ app.None) (app.List[TrendingItem], error) {
	limit, err := trendingLimit(c)
	if err != nil {
		return app.List[TrendingItem]{}, err
	}
	items, err := m.svc.Trending(c.Request.Context(), app.TenantOf(c), limit)
	return app.List[TrendingItem]{Items: app.NonNil(items)}, err
}

func (m *Module) getListing(c *gin.Context, _ app.None) (Listing, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Listing{}, err
	}
	if _, err := m.app.Events().Event(c.Request.Context(), app.TenantOf(c), id); err != nil {
		return Listing{}, err
	}
	return m.svc.Listing(c.Request.Context(), app.TenantOf(c), id)
}

func (m *Module) putListing(c *gin.Context, in Listing) (Listing, error) {
	id, err := app.PathUUID(c, "eventId", "event")
	if err != nil {
		return Listing{}, err
	}
	if _, err := m.app.Events().Event(c.Request.Context(), app.TenantOf(c), id); err != nil {
		return Listing{}, err
	}
	return m.svc.SetListing(c.Request.Context(), app.TenantOf(c), id, in)
}
