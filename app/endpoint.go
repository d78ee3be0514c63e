package app

import (
	"net/http"
	"reflect"

	"github.com/gin-gonic/gin"
)

// None is the request type of a route that reads no body, and the response
// type of one that answers 204 No Content.
type None struct{}

// Validator is a request body that checks itself once decoded; a failure is
// answered before the handler runs.
type Validator interface {
	Validate() error
}

// Endpoint is what an API route runs, together with what the OpenAPI
// document says about it: the Go types of its request and response bodies
// (the schemas are generated from them), its success status and its query
// parameters. Build one with Handle (typed JSON in and out) or Raw (a
// handler that reads or writes something else, documented by hand).
type Endpoint struct {
	serve  func(endpointOptions) gin.HandlerFunc
	before []gin.HandlerFunc
	doc    EndpointDoc
}

// EndpointDoc is what the OpenAPI document says about an endpoint.
type EndpointDoc struct {
	Request          reflect.Type // nil: no request body
	RequestMediaType string
	// Produces lists the success response's media types and bodies; none
	// when the route answers without a body (204).
	Produces []Media
	Status   int
	Query    []QueryParam
	// OptionalBody: an empty request body is the zero request.
	OptionalBody bool
}

// Media is one media type of a body and its Go type (nil: any value).
type Media struct {
	Type string
	Body reflect.Type
}

// QueryParam documents a query parameter (always optional: a required input
// belongs in the path or the body).
type QueryParam struct {
	Name, Description string
}

const mediaJSON = "application/json"

var noneType = reflect.TypeFor[None]()

// Handle makes the endpoint of a JSON route: the body is decoded strictly
// into In (DecodeJSON) and validated (Validator) unless In is None; fn runs;
// its error is answered as a problem document (Fail), its result as JSON
// with the endpoint's status (200, Created: 201), or 204 when Out is None.
// Path parameters and headers are read from c inside fn.
func Handle[In, Out any](fn func(c *gin.Context, in In) (Out, error)) Endpoint {
	in, out := reflect.TypeFor[In](), reflect.TypeFor[Out]()
	doc := EndpointDoc{Status: http.StatusOK, Produces: []Media{{mediaJSON, out}}}
	if in != noneType {
		doc.Request, doc.RequestMediaType = in, mediaJSON
	}
	if out == noneType {
		doc.Status, doc.Produces = http.StatusNoContent, nil
	}
	return Endpoint{doc: doc, serve: func(opt endpointOptions) gin.HandlerFunc {
		return func(c *gin.Context) {
			status := opt.status
			var req In
			if in != noneType {
				if !(opt.optionalBody && c.Request.ContentLength == 0) {
					if err := DecodeJSON(c, &req); err != nil {
						Fail(c, err)
						return
					}
				}
				// An absent optional body is the zero request: checked too.
				if v, ok := any(&req).(Validator); ok {
					if err := v.Validate(); err != nil {
						Fail(c, err)
						return
					}
				}
			}
			res, err := fn(c, req)
			if err != nil {
				Fail(c, err)
				return
			}
			if s, ok := c.Get(ctxReplyStatus); ok {
				status = s.(int)
			}
			if out == noneType {
				c.Status(status)
				return
			}
			c.JSON(status, res)
		}
	}}
}

// Raw makes the endpoint of a handler that reads or writes something other
// than one JSON value (a signed webhook body, a CSV, a stream). Its OpenAPI
// entry comes from Accepts and Produces: a raw endpoint without Produces
// fails the document's test.
func Raw(h gin.HandlerFunc) Endpoint {
	return Endpoint{doc: EndpointDoc{Status: http.StatusOK}, serve: func(endpointOptions) gin.HandlerFunc { return h }}
}

// Accepts documents a raw endpoint's request body.
func (e Endpoint) Accepts(mediaType string, body any) Endpoint {
	e.doc.RequestMediaType, e.doc.Request = mediaType, typeOf(body)
	return e
}

// Produces documents a response body of a raw endpoint (body nil: any
// value); called again, it adds another media type (JSON or CSV, say).
func (e Endpoint) Produces(mediaType string, body any) Endpoint {
	e.doc.Produces = append(append([]Media(nil), e.doc.Produces...), Media{mediaType, typeOf(body)})
	return e
}

// Created answers success with 201 instead of 200.
func (e Endpoint) Created() Endpoint { return e.Status(http.StatusCreated) }

// Status sets the success status.
func (e Endpoint) Status(code int) Endpoint {
	e.doc.Status = code
	return e
}

// Query documents an optional query parameter.
func (e Endpoint) Query(name, description string) Endpoint {
	e.doc.Query = append(append([]QueryParam(nil), e.doc.Query...), QueryParam{name, description})
	return e
}

// Before runs middleware (Idempotent, say) ahead of the endpoint.
func (e Endpoint) Before(mw ...gin.HandlerFunc) Endpoint {
	e.before = append(append([]gin.HandlerFunc(nil), e.before...), mw...)
	return e
}

// OptionalBody lets a client send no body at all, which reads as the zero
// request (a JSON route whose every field is optional).
func (e Endpoint) OptionalBody() Endpoint {
	e.doc.OptionalBody = true
	return e
}

type endpointOptions struct {
	status       int
	optionalBody bool
}

func (e Endpoint) handlers() []gin.HandlerFunc {
	return append(append([]gin.HandlerFunc(nil), e.before...), e.serve(endpointOptions{e.doc.Status, e.doc.OptionalBody}))
}

const ctxReplyStatus = "marquee.reply_status"

// ReplyStatus changes the success status of this one answer (a replayed
// creation answers 200 where a new one answers 201). Document the
// alternative in the summary.
func ReplyStatus(c *gin.Context, code int) { c.Set(ctxReplyStatus, code) }

func typeOf(v any) reflect.Type {
	if v == nil {
		return nil
	}
	return reflect.TypeOf(v)
}
