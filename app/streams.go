package app

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// streamLimiter bounds the live event streams one client address holds open.
// Streams idle for minutes, so they do not take the tenant's in-flight
// request slots (a handful of anonymous streams would otherwise take a chain
// offline); each still holds a connection and a Redis subscription, which is
// what this bound protects.
type streamLimiter struct {
	perClient int

	mu   sync.Mutex
	open map[string]int

	streams *prometheus.GaugeVec
	refused prometheus.Counter
}

func newStreamLimiter(perClient int, reg prometheus.Registerer) *streamLimiter {
	l := &streamLimiter{
		perClient: max(perClient, 1),
		open:      map[string]int{},
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "marquee_http_streams_open", Help: "Live event streams open, by tenant.",
		}, []string{"tenant"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_http_streams_refused_total", Help: "Event streams refused because their client address had too many open.",
		}),
	}
	reg.MustRegister(l.streams, l.refused)
	return l
}

// limit is the middleware of stream routes, in place of the shedder.
func (l *streamLimiter) limit(c *gin.Context) {
	client := addressBlock(c.ClientIP())
	l.mu.Lock()
	if l.open[client] >= l.perClient {
		l.mu.Unlock()
		l.refused.Inc()
		Fail(c, TooMany("too many live streams open from your address; close some tabs", 10))
		return
	}
	l.open[client]++
	l.mu.Unlock()
	gauge := l.streams.WithLabelValues(TenantOf(c).Slug)
	gauge.Inc()
	defer func() {
		gauge.Dec()
		l.mu.Lock()
		if l.open[client]--; l.open[client] <= 0 {
			delete(l.open, client)
		}
		l.mu.Unlock()
	}()
	c.Next()
}

// readBody reads a request's whole body before any slot is taken, under the
// body limit and a deadline: a client that trickles its body (or stalls in
// it) is cut off with 408 and never holds one of its tenant's in-flight
// slots while the server waits for it. Handlers then read from memory.
func (a *App) readBody(c *gin.Context) {
	req := c.Request
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
		c.Next()
		return
	}
	if req.ContentLength > a.Config.MaxBodyBytes {
		// Unread: the server closes the connection after the answer, once
		// the client has had time to read it.
		Fail(c, PayloadTooLarge("request body exceeds %d bytes", a.Config.MaxBodyBytes))
		return
	}
	rc := http.NewResponseController(c.Writer)
	deadlineSet := rc.SetReadDeadline(time.Now().Add(a.Config.BodyReadTimeout)) == nil
	size := req.ContentLength
	if size < 0 || size > 64<<10 {
		size = 512 // unknown length (chunked) or large: grow as it arrives
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(req.Body) // req.Body is already bounded by limitBody
	if deadlineSet {
		_ = rc.SetReadDeadline(time.Time{})
	}
	var maxErr *http.MaxBytesError
	var netErr net.Error
	switch {
	case err == nil:
	case errors.As(err, &maxErr):
		Fail(c, jsonProblem(err))
		return
	case errors.As(err, &netErr) && netErr.Timeout():
		c.Header("Connection", "close")
		Fail(c, Errorf(KindRequestTimeout, "request_timeout",
			"the request body did not arrive within %s", a.Config.BodyReadTimeout))
		return
	default: // the client went away or sent a broken body
		Fail(c, Invalid("invalid_body", "the request body could not be read"))
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	c.Next()
}
