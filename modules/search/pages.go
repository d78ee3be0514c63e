package search

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"marquee/app"
)

//go:embed templates/*.html
var templateFS embed.FS

func parsePages() (*template.Template, error) {
	return template.New("search").Funcs(template.FuncMap{
		"money": money,
		"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
		// Highlights are built by highlight(): the text escaped, only <mark> added.
		"marked":  func(s string) template.HTML { return template.HTML(s) }, // #nosec: escaped by highlight
		"deref":   func(f *float64) float64 { return *f },
		"deref64": func(n *int64) int64 { return *n },
		"inc":     func(i int) int { return i + 1 },
		"sorts":   func() []string { return []string{SortRelevance, SortDate, SortPrice, SortDistance} },
	}).ParseFS(templateFS, "templates/*.html")
}

// money formats minor units for people (the storefront's all-in prices).
func money(minor int64, currency string) string {
	switch currency {
	case "JPY", "KRW", "VND", "CLP", "ISK":
		return fmt.Sprintf("%s %d", currency, minor)
	}
	return fmt.Sprintf("%s %d.%02d", currency, minor/100, minor%100)
}

type searchPageView struct {
	Form       url.Values
	Categories []string
	Trending   []TrendingItem
	Results    *Results
	Error      string
	NextURL    string
	Searching  bool
}

// searchPage is the storefront's home: trending events, a search box and
// filters (a phone-sized form), and the results with their matches marked.
func (m *Module) searchPage(c *gin.Context) {
	ctx, t := c.Request.Context(), app.TenantOf(c)
	form := c.Request.URL.Query()
	v := searchPageView{Form: form}
	var err error
	if v.Categories, err = m.svc.Categories(ctx, t); err != nil {
		app.Fail(c, err)
		return
	}
	// Empty fields of the form are not filters.
	params := url.Values{}
	for k, vs := range form {
		if len(vs) > 0 && vs[0] != "" {
			params[k] = vs[:1]
		}
	}
	// People type a price as money ("45.50"); the API takes minor units.
	// Two decimals: every currency the chains sell in has them.
	if max := params.Get("max"); max != "" {
		params.Del("max")
		if f, err := strconv.ParseFloat(max, 64); err == nil && f >= 0 && f < 1e9 {
			params.Set("max_price", strconv.FormatInt(int64(math.Round(f*100)), 10))
		} else {
			params.Set("max_price", max) // refused below, with the API's words
		}
	}
	status := http.StatusOK
	v.Searching = len(params) > 0
	if q, perr := ParseQuery(params); perr != nil {
		var e *app.Error
		if !errors.As(perr, &e) {
			app.Fail(c, perr)
			return
		}
		v.Error, status = e.Detail, http.StatusBadRequest
	} else {
		res, serr := m.svc.Search(ctx, t, q, params.Get("cursor"))
		var e *app.Error
		switch {
		case serr == nil:
			v.Results = &res
			if res.NextCursor != "" {
				next := url.Values{}
				for k, vs := range params {
					next[k] = vs
				}
				next.Set("cursor", res.NextCursor)
				v.NextURL = "/search?" + next.Encode()
			}
		case errors.As(serr, &e) && e.Kind == app.KindInvalid:
			v.Error, status = e.Detail, http.StatusBadRequest
		default:
			app.Fail(c, serr)
			return
		}
	}
	if !v.Searching {
		if v.Trending, err = m.svc.Trending(ctx, t, 6); err != nil {
			m.app.Log.Warn("search: trending unavailable", "tenant", t.Slug, "err", err)
		}
	}
	content, err := app.RenderTemplate(m.pages, "search", v)
	if err != nil {
		app.Fail(c, err)
		return
	}
	m.app.RenderStorefront(c, status, "Find events", content)
}
