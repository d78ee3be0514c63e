package modules_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules"
)

// The served OpenAPI document is valid, and describes the request body (of
// every route that takes one) and the success response of every API route,
// generated from the endpoints' Go types. That responses match it is checked
// on every answer the tests read (apptest.Env.Do).
func TestOpenAPIDocumentDescribesEveryRoute(t *testing.T) {
	env := apptest.Start(t, dbURL, apptest.Options{Modules: modules.All()})
	tn := env.Tenant(t, apptest.UniqueSlug("doc"))
	res := env.Do(t, http.MethodGet, tn.Slug, "/api/v1/openapi.json", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("openapi.json: %d %s", res.Status, res.Body)
	}
	doc, err := openapi3.NewLoader().LoadFromData(res.Body)
	if err != nil {
		t.Fatalf("load the served document: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("the served document is not valid OpenAPI: %v", err)
	}
	described := 0
	for _, rt := range env.App.Routes() {
		path := rt.Path
		switch {
		case rt.Surface == app.SurfaceAPI:
			path = strings.TrimPrefix(path, "/api/v1")
		case rt.Surface == app.SurfacePlatform && rt.Summary != "":
		default:
			continue
		}
		path = pathParam.ReplaceAllStringFunc(path, func(p string) string { return "{" + p[1:] + "}" })
		name := rt.Method + " " + rt.Path
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(rt.Method) == nil {
			t.Errorf("%s: not in the document", name)
			continue
		}
		op := item.GetOperation(rt.Method)
		if err := checkOperation(rt, op); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		described++
	}
	if described < 50 {
		t.Fatalf("only %d routes described", described)
	}
	t.Logf("%d routes described with request and response schemas", described)
}

func checkOperation(rt app.Route, op *openapi3.Operation) error {
	if !rt.NoBody {
		if op.RequestBody == nil || len(op.RequestBody.Value.Content) == 0 {
			return fmt.Errorf("takes a body but documents none")
		}
		for mt, m := range op.RequestBody.Value.Content {
			if m.Schema == nil || m.Schema.Value == nil || (mt == "application/json" && m.Schema.Value.Type == nil) {
				return fmt.Errorf("request %s has no schema", mt)
			}
		}
	}
	if op.Responses.Status(http.StatusSwitchingProtocols) != nil && op.Responses.Default() != nil {
		return nil // a WebSocket: its frames are not an HTTP body
	}
	var ok *openapi3.ResponseRef
	for code, r := range op.Responses.Map() {
		if strings.HasPrefix(code, "2") {
			ok = r
		}
	}
	if ok == nil {
		return fmt.Errorf("no success response")
	}
	if op.Responses.Default() == nil {
		return fmt.Errorf("no problem (default) response")
	}
	if op.Responses.Status(http.StatusNoContent) != nil {
		return nil
	}
	if len(ok.Value.Content) == 0 {
		return fmt.Errorf("success response has no content")
	}
	for mt, m := range ok.Value.Content {
		if m.Schema == nil || m.Schema.Value == nil {
			return fmt.Errorf("response %s has no schema", mt)
		}
	}
	return nil
}
