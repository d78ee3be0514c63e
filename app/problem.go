package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Error is the one error type handlers return for anything a client should
// see: a stable machine-readable Code, the HTTP Status, and a human Detail.
// Domain packages build these; Fail writes them; nothing else builds HTTP
// errors by hand.
type Error struct {
	Status int
	Code   string
	Detail string
	// Extra members of the problem document (e.g. the events in the way).
	Extra map[string]any
	// Headers to set on the response (e.g. Retry-After).
	Headers map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Problem constructors for the common cases.
func Invalid(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// NotFound reports a missing resource.
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Detail: what + " not found"}
}

// Conflict reports a state conflict.
func Conflict(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Forbidden reports a refused action.
func Forbidden(code, detail string) *Error {
	return &Error{Status: http.StatusForbidden, Code: code, Detail: detail}
}

// Unauthenticated asks for credentials.
func Unauthenticated(detail string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Detail: detail}
}

// TooMany reports a rate limit with a retry delay in seconds.
func TooMany(detail string, retryAfterSeconds int) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Detail: detail,
		Headers: map[string]string{"Retry-After": fmt.Sprint(retryAfterSeconds)}}
}

// StatusClientClosedRequest records (in logs and metrics) a request whose
// client left before its answer; nginx's code for the same.
const StatusClientClosedRequest = 499

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// Fail writes err as a problem document and aborts the request. Errors that
// are not *Error are logged and reported as a 500 without their text.
func Fail(c *gin.Context, err error) {
	var e *Error
	if !errors.As(err, &e) {
		if c.Request.Context().Err() != nil {
			// The client hung up, which is usually what failed the work:
			// nobody reads an answer and it is not the server's fault.
			c.AbortWithStatus(StatusClientClosedRequest)
			return
		}
		_ = c.Error(err)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Detail: "internal error; the request id identifies it in the logs"}
	}
	body := map[string]any{
		"type":   "https://marquee.dev/problems/" + e.Code,
		"title":  http.StatusText(e.Status),
		"status": e.Status,
		"code":   e.Code,
		"detail": e.Detail,
	}
	if id := c.GetString(ctxRequestID); id != "" {
		body["request_id"] = id
	}
	for k, v := range e.Extra {
		body[k] = v
	}
	for k, v := range e.Headers {
		c.Header(k, v)
	}
	c.Abort()
	if wantsHTML(c) {
		renderErrorPage(c, e)
		return
	}
	c.Status(e.Status)
	c.Header("Content-Type", ProblemContentType)
	_ = json.NewEncoder(c.Writer).Encode(body)
}

// DecodeJSON reads a JSON request body into dst strictly: the media type must
// be JSON, unknown fields and wrong types are refused, one value only, and
// the body size is bounded by the server's limit.
func DecodeJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Detail: "send application/json"}
		}
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return Invalid("invalid_json", "request body must hold exactly one JSON value")
	}
	return nil
}

func jsonProblem(err error) *Error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Detail: fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return Invalid("invalid_json", "request body is empty")
	case errors.As(err, &syntaxErr):
		return Invalid("invalid_json", "malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return Invalid("invalid_json", "field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Invalid("invalid_json", "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return Invalid("invalid_json", "malformed JSON: %v", err)
}
