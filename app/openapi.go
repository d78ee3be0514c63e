package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// openAPIDoc is built once, from the routes as registered: they do not change
// after New.
type openAPIDoc struct {
	once sync.Once
	doc  *openapi3.T
	json []byte
	err  error
}

// OpenAPI returns the OpenAPI 3.0 document of the API routes (and the
// documented platform routes), generated from the registered routes and the
// Go types of their endpoints, so it cannot drift from what is served.
func (a *App) OpenAPI() (*openapi3.T, error) {
	a.apiDoc.once.Do(func() {
		a.apiDoc.doc, a.apiDoc.err = a.buildOpenAPI()
		if a.apiDoc.err == nil {
			a.apiDoc.json, a.apiDoc.err = json.Marshal(a.apiDoc.doc)
		}
	})
	return a.apiDoc.doc, a.apiDoc.err
}

func (a *App) openAPI(c *gin.Context) {
	if _, err := a.OpenAPI(); err != nil {
		Fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", a.apiDoc.json)
}

func (a *App) buildOpenAPI() (*openapi3.T, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info:    &openapi3.Info{Title: "Marquee API", Version: "1"},
		Servers: openapi3.Servers{{URL: "/api/v1"}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			SecuritySchemes: openapi3.SecuritySchemes{"bearer": &openapi3.SecuritySchemeRef{
				Value: openapi3.NewSecurityScheme().WithType("http").WithScheme("bearer")}},
			Schemas: openapi3.Schemas{"Problem": &openapi3.SchemaRef{Value: problemRef.Value}},
		},
	}
	for _, rt := range a.routes {
		if rt.Surface != SurfaceAPI {
			continue
		}
		op, err := operationOf(rt)
		if err != nil {
			return nil, err
		}
		path := ginParam.ReplaceAllString(strings.TrimPrefix(rt.Path, SurfaceAPI.prefix()), "{$1}")
		doc.AddOperation(path, rt.Method, op)
	}
	// Documented platform routes (those with a summary) live on the base
	// host, not under /api/v1: their path item names its own server. One
	// takes the place of a chain route at the same relative path (the
	// deprecated per-chain Stripe webhook): a path item has one server list,
	// and the document points clients at the successor.
	for _, rt := range a.routes {
		if rt.Surface != SurfacePlatform || rt.Summary == "" {
			continue
		}
		op, err := operationOf(rt)
		if err != nil {
			return nil, err
		}
		item := doc.Paths.Value(rt.Path)
		if item == nil || item.Servers == nil {
			item = &openapi3.PathItem{Servers: openapi3.Servers{{URL: "/",
				Description: "the platform's base host (" + a.Config.BaseDomain + "), not a chain's"}}}
		}
		item.SetOperation(rt.Method, op)
		doc.Paths.Set(rt.Path, item)
	}
	return doc, nil
}

func operationOf(rt Route) (*openapi3.Operation, error) {
	op := openapi3.NewOperation()
	op.Summary = rt.Summary
	op.Tags = []string{rt.Module}
	op.OperationID = operationID(rt)
	op.Extensions = map[string]any{"x-permission": rt.Perm.String()}
	for _, m := range ginParam.FindAllStringSubmatch(rt.Path, -1) {
		op.AddParameter(openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema()))
	}
	for _, q := range rt.Doc.Query {
		op.AddParameter(openapi3.NewQueryParameter(q.Name).WithDescription(q.Description).WithSchema(openapi3.NewStringSchema()))
	}
	if rt.Perm.Kind != PermPublic {
		op.Security = &openapi3.SecurityRequirements{{"bearer": []string{}}}
	}
	d := rt.Doc
	if d.Request != nil {
		s, err := schemaOf(d.Request)
		if err != nil {
			return nil, fmt.Errorf("%s %s request: %w", rt.Method, rt.Path, err)
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(!d.OptionalBody).
			WithContent(openapi3.NewContentWithSchemaRef(s, []string{d.RequestMediaType}))}
	}
	ok := openapi3.NewResponse().WithDescription(http.StatusText(d.Status))
	if len(d.Produces) > 0 {
		content := openapi3.Content{}
		for _, m := range d.Produces {
			s := openapi3.NewSchemaRef("", &openapi3.Schema{})
			if m.Body != nil {
				var err error
				if s, err = schemaOf(m.Body); err != nil {
					return nil, fmt.Errorf("%s %s response: %w", rt.Method, rt.Path, err)
				}
			}
			content[m.Type] = openapi3.NewMediaType().WithSchemaRef(s)
		}
		ok.WithContent(content)
	}
	op.Responses = openapi3.NewResponses(
		openapi3.WithStatus(d.Status, &openapi3.ResponseRef{Value: ok}),
		openapi3.WithName("default", openapi3.NewResponse().WithDescription("A problem document (RFC 9457) with a stable code").
			WithContent(openapi3.NewContentWithSchemaRef(problemRef, []string{ProblemContentType}))),
	)
	return op, nil
}

// operationID is the method and the path in words: createEvent-like ids are
// not needed by generators as long as ids are unique and stable.
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.Split(strings.TrimPrefix(rt.Path, SurfaceAPI.prefix()), "/") {
		part = strings.TrimLeft(part, ":*")
		if part == "" {
			continue
		}
		b.WriteByte('_')
		b.WriteString(strings.ReplaceAll(part, "-", "_"))
	}
	return b.String()
}

var (
	uuidType = reflect.TypeFor[uuid.UUID]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// schemaOf reflects a Go type into a schema. encoding/json decides the field
// names (json tags); a pointer is nullable; a UUID is a string; raw JSON is
// any value.
func schemaOf(t reflect.Type) (*openapi3.SchemaRef, error) {
	g := openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(func(_ string, ft reflect.Type, _ reflect.StructTag, s *openapi3.Schema) error {
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft {
		case uuidType:
			nullable := s.Nullable
			*s = *openapi3.NewUUIDSchema()
			s.Nullable = nullable
		case rawType:
			*s = openapi3.Schema{}
		}
		return nil
	}))
	ref, err := g.GenerateSchemaRef(t)
	// The generator names reused types by their Go name; the document
	// inlines every schema (only Problem is a component).
	for r := range g.SchemaRefs {
		if !strings.HasPrefix(r.Ref, "#/components/") {
			r.Ref = ""
		}
	}
	return ref, err
}

// problemRef points at the Problem component; it carries the schema too, so
// the document validates responses before it is serialized.
var problemRef = openapi3.NewSchemaRef("#/components/schemas/Problem", problemSchema())

func problemSchema() *openapi3.Schema {
	s := openapi3.NewObjectSchema().
		WithProperty("type", openapi3.NewStringSchema()).
		WithProperty("title", openapi3.NewStringSchema()).
		WithProperty("status", openapi3.NewIntegerSchema()).
		WithProperty("code", described(openapi3.NewStringSchema(), "stable machine code, listed in app/codes.go")).
		WithProperty("detail", openapi3.NewStringSchema()).
		WithProperty("field", described(openapi3.NewStringSchema(), "the request field at fault, when one is")).
		WithProperty("request_id", openapi3.NewStringSchema())
	s.Required = []string{"type", "title", "status", "code", "detail"}
	return s
}

func described(s *openapi3.Schema, d string) *openapi3.Schema {
	s.Description = d
	return s
}
