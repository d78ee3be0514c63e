package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
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
		e = inputRefusedByDatabase(err)
	}
	if e == nil {
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
// be JSON, unknown fields and wrong types are refused, one value only, the
// body size is bounded by the server's limit, and no string may hold a NUL
// character or invalid UTF-8 (PostgreSQL refuses the first; Go's decoder
// would silently replace the second).
func DecodeJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Detail: "send application/json"}
		}
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return jsonProblem(err)
	}
	if field, bad := badJSONText(body); bad {
		return invalidText(field)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return Invalid("invalid_json", "request body must hold exactly one JSON value")
	}
	return nil
}

// inputRefusedByDatabase turns the errors PostgreSQL raises for values it
// cannot take (a number out of its column's range, text it cannot store)
// into a 400: input checks should have caught them, but a client error
// must not read as a server fault. Its statement, and so its transaction,
// failed: nothing changed.
func inputRefusedByDatabase(err error) *Error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return nil
	}
	switch pgErr.Code {
	case "22003": // numeric_value_out_of_range
		return Invalid("out_of_range", "a number is out of range")
	case "22021", "22P05": // character_not_in_repertoire, untranslatable_character
		return Invalid("invalid_text", "text must be UTF-8 without NUL characters")
	}
	return nil
}

// invalidText names the field whose text PostgreSQL could not store.
func invalidText(field string) *Error {
	e := Invalid("invalid_text", "%s must be UTF-8 text without NUL characters", field)
	e.Extra = map[string]any{"field": field}
	return e
}

// printableName shows a client's field name in a problem detail, with what
// made it unusable made visible.
func printableName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", `\u0000`)
}

// textOK reports whether s can be stored as PostgreSQL text.
func textOK(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// badJSONText finds the first key or string value of a JSON document that
// holds a NUL (written \u0000) or invalid UTF-8, and names it by its path
// (e.g. tiers[2].name). Most bodies have neither, and skip the walk. A
// document that does not parse reports nothing: the decoder names that.
func badJSONText(body []byte) (string, bool) {
	invalidUTF8 := !utf8.Valid(body)
	if !invalidUTF8 && !bytes.Contains(body, []byte(`\u0000`)) {
		return "", false
	}
	bad := func(s string) bool {
		// The decoder has replaced invalid bytes with U+FFFD by now.
		return strings.ContainsRune(s, 0) || (invalidUTF8 && strings.ContainsRune(s, utf8.RuneError))
	}
	type frame struct {
		object, wantKey bool
		key             string
		index           int
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(printableName(f.key))
			} else {
				fmt.Fprintf(&b, "[%d]", f.index)
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = k, false
				if bad(k) {
					return path(), true
				}
				continue
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		case string:
			if bad(v) {
				return path(), true
			}
		}
		valueDone()
	}
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
