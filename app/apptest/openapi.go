package apptest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// documented checks every API answer a test reads through Do against the
// App's served OpenAPI document: its status must be documented (or be a
// problem document, the default), and its body must match the schema of
// its media type. So the document cannot drift from what handlers return.
type documented struct {
	once   sync.Once
	router routers.Router
	err    error
}

func (e *Env) checkDocumented(t testing.TB, method, slug, path string, res Response) {
	t.Helper()
	if !strings.HasPrefix(path, "/api/v1/") || slug == "" {
		return
	}
	e.doc.once.Do(func() {
		var doc *openapi3.T
		if doc, e.doc.err = e.App.OpenAPI(); e.doc.err != nil {
			return
		}
		// The router matches absolute URLs against the document's servers.
		copied := *doc
		copied.Servers = openapi3.Servers{{URL: "http://api.test/api/v1"}}
		e.doc.router, e.doc.err = gorillamux.NewRouter(&copied)
	})
	if e.doc.err != nil {
		t.Fatalf("OpenAPI document: %v", e.doc.err)
	}
	req := httptest.NewRequest(method, "http://api.test"+path, nil)
	route, params, err := e.doc.router.FindRoute(req)
	if err != nil {
		return // not an API route (404 and 405 answers are problems anyway)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.Status,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if res.Status == http.StatusNotModified || method == http.MethodHead {
		return
	}
	in.SetBodyBytes(res.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d outside its OpenAPI document: %v\nbody: %s", method, path, res.Status, err, abbreviate(res.Body))
	}
}

func abbreviate(b []byte) []byte {
	if len(b) > 600 {
		return append(bytes.Clone(b[:600]), "…"...)
	}
	return b
}

func init() {
	openapi3filter.RegisterBodyDecoder("text/csv", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/pdf", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/zip", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/vnd.apple.pkpass", openapi3filter.FileBodyDecoder)
	for _, image := range []string{"image/jpeg", "image/png", "image/webp"} {
		openapi3filter.RegisterBodyDecoder(image, openapi3filter.FileBodyDecoder)
	}
}
