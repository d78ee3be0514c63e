package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"marquee/app"
)

// A failure caused by the client hanging up is recorded as 499, not as a
// server error with its text in the logs; the same failure with the client
// still there is a 500 problem document.
func TestFailAfterClientLeftIsNotAServerError(t *testing.T) {
	cause := errors.New("query: context canceled")

	ctx, hangUp := context.WithCancel(context.Background())
	hangUp()
	left, _ := gin.CreateTestContext(httptest.NewRecorder())
	left.Request = httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/events", nil)
	app.Fail(left, cause)
	if got := left.Writer.Status(); got != app.StatusClientClosedRequest {
		t.Fatalf("client gone: status %d, want %d", got, app.StatusClientClosedRequest)
	}
	if len(left.Errors) != 0 {
		t.Fatalf("client gone: error recorded for the logs: %v", left.Errors)
	}

	rec := httptest.NewRecorder()
	present, _ := gin.CreateTestContext(rec)
	present.Request = httptest.NewRequest(http.MethodGet, "/api/v1/events", nil)
	app.Fail(present, cause)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != app.ProblemContentType {
		t.Fatalf("client present: %d %q, want 500 problem+json", rec.Code, rec.Header().Get("Content-Type"))
	}
	if len(present.Errors) != 1 {
		t.Fatalf("client present: %d errors recorded, want 1", len(present.Errors))
	}
}

// A library's printf-style log lines come out as our JSON lines, with their
// source named; its errors are warnings and its chatter is debug.
func TestPrintfLoggerWritesStructuredLines(t *testing.T) {
	var buf bytes.Buffer
	l := app.PrintfLogger{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Source: "stripe"}
	l.Errorf("Request failed with error: %v\n", "card_declined")
	l.Infof("Requesting %s %s", "POST", "/v1/payment_intents") // below info: dropped
	var line struct {
		Level, Msg, Source string
	}
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	if line.Level != "WARN" || line.Msg != "Request failed with error: card_declined" || line.Source != "stripe" {
		t.Fatalf("line: %+v", line)
	}
}
