package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"marquee/modules/inventory"
)

// The stadium-night arrival model of `bench doors --arrivals`: each holder
// gets an arrival time in the real night (LateShare of them in the last
// LateWindow before the show, the rest evenly since the doors opened),
// scaled into Run. A dispatcher hands each arrival to the scanners at its
// time; a holder who goes out is scheduled out some time after their
// admission was answered and back in later (so an exit never overtakes its
// entry, however far behind the server falls). Latency counts from the
// request's send; the wait at the door counts from the scheduled time, so
// a server that cannot keep up with the peak shows it there.

// ArrivalFigures are the arrival model's own figures.
type ArrivalFigures struct {
	PeakSecs         float64 `json:"peak_seconds"`
	PeakArrivals     int     `json:"peak_arrivals"`
	PeakArrivalsPerS float64 `json:"peak_arrivals_per_second"`
	PeakAdmitsPerS   float64 `json:"peak_admits_per_second"`
	PeakRatio        float64 `json:"peak_admits_over_raw"`
	WaitP50          float64 `json:"door_wait_p50_ms"`
	WaitP99          float64 `json:"door_wait_p99_ms"`
	// Saturated says whether the peak outran the server (the queue at the
	// door grew): only then is the peak ratio a capacity figure.
	Saturated string `json:"saturated"`
	peakFrom  time.Time
	peakTo    time.Time
}

type doorJob struct {
	at  time.Time
	tk  soldTicket
	typ string
	// exitAfter and backAfter (scaled) schedule a holder's exit after their
	// admission and their return after the exit; 0 for those who stay.
	exitAfter, backAfter time.Duration
	dup                  bool
	arrival              bool // the holder's first scan of the night
}

// arrivalNight runs the night and returns its wall time.
func (h *doorsHarness) arrivalNight(ctx context.Context, event string, tickets []soldTicket) time.Duration {
	o := h.do
	h.rec = NewRecorder()
	scale := float64(o.Run) / float64(o.Open)
	compress := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	r := rand.New(rand.NewPCG(42, 7))
	start := time.Now().Add(500 * time.Millisecond)
	early := o.Open - o.LateWindow
	jobs := make([]doorJob, len(tickets))
	for i, tk := range tickets {
		var real time.Duration
		if r.Float64() < o.LateShare {
			real = early + time.Duration(r.Float64()*float64(o.LateWindow))
		} else {
			real = time.Duration(r.Float64() * float64(early))
		}
		j := doorJob{at: start.Add(compress(real)), tk: tk, typ: inventory.ScanEntry, dup: r.Float64() < o.DupShare, arrival: true}
		if r.Float64() < o.ExitShare {
			// Out within the rest of the night, back in before its end.
			left := o.Open - real
			out := time.Duration(r.Float64() * 0.6 * float64(left))
			j.exitAfter = compress(max(out, time.Minute))
			j.backAfter = compress(max(time.Duration(r.Float64()*0.4*float64(left)), time.Minute))
		}
		jobs[i] = j
	}
	slices.SortFunc(jobs, func(a, b doorJob) int { return a.at.Compare(b.at) })
	peakFrom, peakTo := start.Add(compress(early)), start.Add(o.Run)
	h.arrival = &ArrivalFigures{peakFrom: peakFrom, peakTo: peakTo, PeakSecs: peakTo.Sub(peakFrom).Seconds()}
	for _, j := range jobs {
		if !j.at.Before(peakFrom) {
			h.arrival.PeakArrivals++
		}
	}

	work := make(chan doorJob)
	var pending sync.WaitGroup // jobs scheduled and not yet scanned
	var done atomic.Int64
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	schedule := func(j doorJob) {
		pending.Add(1)
		time.AfterFunc(time.Until(j.at), func() {
			select {
			case work <- j:
			case <-pctx.Done():
				pending.Done()
			}
		})
	}
	pending.Add(1) // the dispatcher itself
	go func() {
		defer pending.Done()
		for _, j := range jobs {
			if sleep(pctx, time.Until(j.at)) {
				return
			}
			pending.Add(1)
			select {
			case work <- j:
			case <-pctx.Done():
				pending.Done()
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for s := range o.Scanners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			device := fmt.Sprintf("scanner-%02d-%d", s, s%8)
			for j := range work {
				want := inventory.ResultAdmit
				if j.typ == inventory.ScanExit {
					want = inventory.ResultExited
				}
				res := h.scanOnce(ctx, event, j.tk, j.typ, device, want)
				h.admitMu.Lock()
				h.waits = append(h.waits, time.Since(j.at))
				h.admitMu.Unlock()
				if res == inventory.ResultAdmit && j.dup {
					h.scanOnce(ctx, event, j.tk, inventory.ScanEntry, fmt.Sprintf("scanner-%02d-%d", (s+1)%o.Scanners, (s+1)%8), inventory.ResultAlreadyAdmitted)
				}
				switch {
				case res == inventory.ResultAdmit && j.exitAfter > 0:
					schedule(doorJob{at: time.Now().Add(j.exitAfter), tk: j.tk, typ: inventory.ScanExit, backAfter: j.backAfter})
				case res == inventory.ResultExited && j.backAfter > 0:
					schedule(doorJob{at: time.Now().Add(j.backAfter), tk: j.tk, typ: inventory.ScanEntry})
				}
				if j.arrival {
					done.Add(1)
				}
				pending.Done()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { pending.Wait(); close(work); wg.Wait(); close(finished) }()
	bar := h.bar()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			bar.draw(int(done.Load()), len(tickets), fmt.Sprintf("holders through %d/%d  admits %d", done.Load(), len(tickets), h.admits.Load()))
			bar.finish()
			return time.Since(start)
		case <-tick.C:
			bar.draw(int(done.Load()), len(tickets), fmt.Sprintf("holders through %d/%d  admits %d", done.Load(), len(tickets), h.admits.Load()))
		}
	}
}

// arrivalFigures fills the arrival model's figures (the raw phase's
// ratio is set after it ran).
func (h *doorsHarness) arrivalFigures(rep *DoorsReport) {
	a := h.arrival
	h.admitMu.Lock()
	var peak int
	for _, t := range h.admitAt {
		if !t.Before(a.peakFrom) && t.Before(a.peakTo) {
			peak++
		}
	}
	waits := slices.Clone(h.waits)
	h.admitMu.Unlock()
	slices.Sort(waits)
	a.PeakArrivalsPerS = float64(a.PeakArrivals) / a.PeakSecs
	a.PeakAdmitsPerS = float64(peak) / a.PeakSecs
	a.WaitP50, a.WaitP99 = percentile(waits, .5), percentile(waits, .99)
	a.Saturated = "the server kept up with the peak: the ratio is the arrival rate's, not a capacity"
	if a.WaitP99 > 1000 {
		a.Saturated = "the peak outran the server (door wait p99 over 1 s): the ratio is its capacity"
	}
	rep.Arrival = a
}
