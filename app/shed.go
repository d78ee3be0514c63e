package app

import (
	"bytes"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// shedder keeps the server answering under overload: it bounds requests in
// flight per tenant and overall, lets a request wait briefly for a slot, and
// otherwise refuses it with 503 and Retry-After instead of letting it time
// out. The per-tenant bound is what keeps one tenant's flash on-sale from
// starving every other tenant of workers and database connections.
type shedder struct {
	global    chan struct{}
	perTenant int
	wait      time.Duration

	mu      sync.Mutex
	tenants map[string]chan struct{}

	shed *prometheus.CounterVec
}

func newShedder(maxInFlight, perTenant int, wait time.Duration, reg prometheus.Registerer) *shedder {
	maxInFlight, perTenant = max(maxInFlight, 1), max(perTenant, 1)
	s := &shedder{
		global: make(chan struct{}, maxInFlight), perTenant: perTenant, wait: wait, tenants: map[string]chan struct{}{},
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_http_shed_total", Help: "Requests refused with 503 because their tenant or the server was at capacity.",
		}, []string{"reason"}),
	}
	reg.MustRegister(s.shed)
	return s
}

func (s *shedder) tenantSlots(slug string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.tenants[slug]
	if !ok {
		ch = make(chan struct{}, s.perTenant)
		s.tenants[slug] = ch
	}
	return ch
}

// limit is the middleware for tenant routes (after tenant resolution and
// after the body has been read). Stream routes use the stream limiter instead.
func (s *shedder) limit(c *gin.Context) { s.limitIn(c, true) }

// limitGlobal is limit for light routes (Route.Light): the server's bound
// only.
func (s *shedder) limitGlobal(c *gin.Context) { s.limitIn(c, false) }

func (s *shedder) limitIn(c *gin.Context, perTenant bool) {
	deadline := time.NewTimer(s.wait)
	defer deadline.Stop()
	acquire := func(slots chan struct{}, reason string) bool {
		select {
		case slots <- struct{}{}:
			return true
		default:
		}
		select {
		case slots <- struct{}{}:
			return true
		case <-deadline.C:
			s.shed.WithLabelValues(reason).Inc()
			Fail(c, Unavailable("overloaded", time.Second, "too many requests in flight; retry shortly"))
			return false
		case <-c.Request.Context().Done():
			c.Abort()
			return false
		}
	}
	mine := make(chan struct{}, 1) // a light route's own: never contended
	if perTenant {
		mine = s.tenantSlots(TenantOf(c).Slug)
	}
	if !acquire(mine, "tenant") {
		return
	}
	if !acquire(s.global, "global") {
		<-mine
		return
	}
	// The answer is kept in memory until the handler is done and the slots
	// are given back, then sent: a client that stops reading (or reads
	// slowly) holds a connection and a goroutine, never one of its tenant's
	// slots. A handler that parks or flushes goes straight to the client.
	bw := &bufferedWriter{ResponseWriter: c.Writer}
	var once sync.Once
	release := func() { once.Do(func() { <-s.global; <-mine }) }
	bw.release = release
	c.Writer = bw
	defer func() {
		c.Writer = bw.ResponseWriter
		release()
		bw.passThrough()
	}()
	c.Set(parkKey, bw.letGo)
	c.Next()
}

// bufferedWriter holds a handler's answer until its slots are given back.
type bufferedWriter struct {
	gin.ResponseWriter
	release func()
	buf     bytes.Buffer
	status  int
	direct  bool
}

// letGo gives the slots back and sends the answer on directly from here:
// the request waits elsewhere (parked) or streams (flushes).
func (w *bufferedWriter) letGo() {
	w.release()
	w.passThrough()
}

// passThrough sends what was held and lets later writes through.
func (w *bufferedWriter) passThrough() {
	if w.direct {
		return
	}
	w.direct = true
	if w.status != 0 {
		w.ResponseWriter.WriteHeader(w.status)
	}
	if w.buf.Len() > 0 {
		_, _ = w.ResponseWriter.Write(w.buf.Bytes())
		w.buf = bytes.Buffer{}
	}
}

func (w *bufferedWriter) WriteHeader(code int) {
	if w.direct {
		w.ResponseWriter.WriteHeader(code)
	} else if code > 0 {
		w.status = code
	}
}

func (w *bufferedWriter) WriteHeaderNow() {
	if w.direct {
		w.ResponseWriter.WriteHeaderNow()
	}
}

func (w *bufferedWriter) Write(b []byte) (int, error) {
	if w.direct {
		return w.ResponseWriter.Write(b)
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

func (w *bufferedWriter) WriteString(s string) (int, error) {
	if w.direct {
		return w.ResponseWriter.WriteString(s)
	}
	return w.Write([]byte(s))
}

func (w *bufferedWriter) Status() int {
	if w.direct {
		return w.ResponseWriter.Status()
	}
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *bufferedWriter) Size() int {
	if w.direct {
		return w.ResponseWriter.Size()
	}
	if w.buf.Len() == 0 {
		return -1
	}
	return w.buf.Len()
}

func (w *bufferedWriter) Written() bool {
	if w.direct {
		return w.ResponseWriter.Written()
	}
	return w.buf.Len() > 0
}

// Flush means the handler streams to the client: it does so without its
// slots, as a parked request does.
func (w *bufferedWriter) Flush() {
	w.letGo()
	w.ResponseWriter.Flush()
}

const parkKey = "marquee.shed.release"

// Park gives a request's in-flight slots back while it waits in a queue of
// the module's own that bounds the real work (hold batches: a few database
// connections per event however many buyers wait) and sheds when full. The
// request goes on as before; only the shedder stops counting it.
func Park(c *gin.Context) {
	if v, ok := c.Get(parkKey); ok {
		v.(func())()
	}
}
