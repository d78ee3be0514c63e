package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
)

// Kind is what sort of failure an Error is: a small closed set, from which
// the HTTP status is derived in one place (Kind.status). Module code names a
// kind, never a status.
type Kind string

// The domain kinds: what a module may say about a failed request.
const (
	KindInvalid         Kind = "invalid"           // the request is malformed or a value is refused
	KindNotFound        Kind = "not_found"         // the resource does not exist (or is not yours to see)
	KindConflict        Kind = "conflict"          // the resource's state does not allow it now
	KindForbidden       Kind = "forbidden"         // the caller may not do this
	KindUnauthenticated Kind = "unauthenticated"   // credentials are missing or wrong
	KindRateLimited     Kind = "rate_limited"      // the caller asks too often; RetryAfter says when to return
	KindUnavailable     Kind = "unavailable"       // the server cannot serve it now; RetryAfter says when to retry
	KindGone            Kind = "gone"              // the resource existed and has ended for good
	KindPayloadTooLarge Kind = "payload_too_large" // the request body exceeds the limit
)

// The protocol kinds: answers the HTTP layer owes a client that no domain
// kind says, each kept because a client or proxy acts on its exact status.
const (
	// KindMethodNotAllowed: the route exists but not with this method (405,
	// which HTTP requires in place of 404 there).
	KindMethodNotAllowed Kind = "method_not_allowed"
	// KindUnsupportedMediaType: the body is not JSON (415, so a client knows
	// to change its Content-Type rather than its data).
	KindUnsupportedMediaType Kind = "unsupported_media_type"
	// KindRequestTimeout: the body did not arrive in time (408, which tells
	// a client it may resend on a new connection).
	KindRequestTimeout Kind = "request_timeout"
	// KindUnprocessable: an Idempotency-Key reused with a different request
	// (422, as the IETF Idempotency-Key draft specifies).
	KindUnprocessable Kind = "unprocessable"
	// KindUpstream: a provider the request depends on (the payment
	// provider) did not answer (502: the fault is neither the client's nor
	// this server's, and the same request may be retried).
	KindUpstream Kind = "upstream"
	// KindInternal: anything else, reported without its text (500).
	KindInternal Kind = "internal"
)

// status is the one place a kind becomes an HTTP status.
func (k Kind) status() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindForbidden:
		return http.StatusForbidden
	case KindUnauthenticated:
		return http.StatusUnauthorized
	case KindRateLimited:
		return http.StatusTooManyRequests
	case KindUnavailable:
		return http.StatusServiceUnavailable
	case KindGone:
		return http.StatusGone
	case KindPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case KindUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case KindRequestTimeout:
		return http.StatusRequestTimeout
	case KindUnprocessable:
		return http.StatusUnprocessableEntity
	case KindUpstream:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// Error is the one error type handlers return for anything a client should
// see: its Kind, a stable machine-readable Code listed in codes.go, and a
// human Detail. Domain packages build these with the constructors below;
// Fail writes them, deriving the status and Retry-After; nothing else builds
// HTTP errors by hand.
type Error struct {
	Kind   Kind
	Code   string
	Detail string
	// Field names the input at fault (e.g. "seats", "tiers[2].name"): every
	// validation error that can blame one field does, as the problem
	// document's "field" member.
	Field string
	// RetryAfter, when set, tells the client when to try again (the
	// Retry-After header, in whole seconds rounded up).
	RetryAfter time.Duration
	// Extra members of the problem document (e.g. the events in the way).
	Extra map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Status is the HTTP status the error is answered with, from its kind.
func (e *Error) Status() int { return e.Kind.status() }

// setHeaders sets the response headers the error implies (Retry-After).
func (e *Error) setHeaders(c *gin.Context) {
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
}

// With adds a member to the problem document (e.g. the events in the way)
// and returns e.
func (e *Error) With(member string, v any) *Error {
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra[member] = v
	return e
}

// Errorf builds an Error of any kind; the constructors below name the
// common ones.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Invalid reports a malformed request.
func Invalid(code, format string, args ...any) *Error {
	return Errorf(KindInvalid, code, format, args...)
}

// InvalidField reports a bad value of one input field, which it names.
func InvalidField(code, field, format string, args ...any) *Error {
	e := Errorf(KindInvalid, code, format, args...)
	e.Field = field
	return e
}

// NotFound reports a missing resource.
func NotFound(what string) *Error {
	return &Error{Kind: KindNotFound, Code: "not_found", Detail: what + " not found"}
}

// NotFoundCode reports a missing resource under a more specific code.
func NotFoundCode(code, format string, args ...any) *Error {
	return Errorf(KindNotFound, code, format, args...)
}

// Conflict reports a state conflict.
func Conflict(code, format string, args ...any) *Error {
	return Errorf(KindConflict, code, format, args...)
}

// Forbidden reports a refused action.
func Forbidden(code, detail string) *Error {
	return &Error{Kind: KindForbidden, Code: code, Detail: detail}
}

// Unauthenticated asks for credentials.
func Unauthenticated(detail string) *Error {
	return &Error{Kind: KindUnauthenticated, Code: "unauthenticated", Detail: detail}
}

// RateLimited reports a caller asking too often, and when to return.
func RateLimited(code string, retryAfter time.Duration, format string, args ...any) *Error {
	e := Errorf(KindRateLimited, code, format, args...)
	e.RetryAfter = retryAfter
	return e
}

// TooMany reports the generic rate limit with a retry delay in seconds.
func TooMany(detail string, retryAfterSeconds int) *Error {
	return RateLimited("rate_limited", time.Duration(retryAfterSeconds)*time.Second, "%s", detail)
}

// Unavailable reports that the server cannot serve the request now, and
// when to retry.
func Unavailable(code string, retryAfter time.Duration, format string, args ...any) *Error {
	e := Errorf(KindUnavailable, code, format, args...)
	e.RetryAfter = retryAfter
	return e
}

// Gone reports a resource that has ended for good.
func Gone(code, format string, args ...any) *Error {
	return Errorf(KindGone, code, format, args...)
}

// PayloadTooLarge reports a request body over the limit.
func PayloadTooLarge(format string, args ...any) *Error {
	return Errorf(KindPayloadTooLarge, "payload_too_large", format, args...)
}

// Upstream reports a provider that did not answer, and when to retry.
func Upstream(code string, retryAfter time.Duration, format string, args ...any) *Error {
	e := Errorf(KindUpstream, code, format, args...)
	e.RetryAfter = retryAfter
	return e
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
		e = Errorf(KindInternal, "internal", "internal error; the request id identifies it in the logs")
	}
	checkListed(e)
	body := map[string]any{
		"type":   "https://marquee.dev/problems/" + e.Code,
		"title":  http.StatusText(e.Status()),
		"status": e.Status(),
		"code":   e.Code,
		"detail": e.Detail,
	}
	if e.Field != "" {
		body["field"] = e.Field
	}
	if id := c.GetString(ctxRequestID); id != "" {
		body["request_id"] = id
	}
	for k, v := range e.Extra {
		body[k] = v
	}
	e.setHeaders(c)
	c.Abort()
	if wantsHTML(c) {
		renderErrorPage(c, e)
		return
	}
	c.Status(e.Status())
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
			return Errorf(KindUnsupportedMediaType, "unsupported_media_type", "send application/json")
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
	return InvalidField("invalid_text", field, "%s must be UTF-8 text without NUL characters", field)
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
		return PayloadTooLarge("request body exceeds %d bytes", maxErr.Limit)
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
