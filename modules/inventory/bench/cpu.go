package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"

	"marquee/tenants"
)

// cpuUse is the CPU time spent so far by this process (the server and the
// harness), by the database's backends serving this process's database, and
// by Redis: what a phase costs, whatever the machine's other load made it
// wait. The backends are read from /proc, so only a database on this
// machine is counted (dbOK).
type cpuUse struct {
	proc, redis time.Duration
	db          map[int]time.Duration // backend pid → its CPU time
	dbOK        bool
	redisOK     bool
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux platform Go supports).
const clockTicks = 100

func (h *Harness) cpuNow(ctx context.Context) cpuUse {
	var u cpuUse
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var pids []int
	err := h.a.TxWith(ctx, h.t, tenants.TxOptions{ReadOnly: true}, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`).Scan(&pids).Error
	})
	if err == nil {
		u.db, u.dbOK = map[int]time.Duration{}, true
		for _, pid := range pids {
			d, ok := procCPU(pid)
			if !ok {
				u.dbOK = false // the database is not on this machine
				break
			}
			u.db[pid] = d
		}
	}
	if info, err := h.a.Redis.Info(ctx, "cpu").Result(); err == nil {
		var secs float64
		n := 0
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, err := strconv.ParseFloat(v, 64)
				if err == nil {
					secs += f
					n++
				}
			}
		}
		u.redis, u.redisOK = time.Duration(secs*float64(time.Second)), n == 2
	}
	return u
}

// procCPU reads a process's user and system time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) may hold spaces; the fields after it start
	// past its closing parenthesis: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * time.Second / clockTicks, true
}

// CPUSpent is what a phase cost in CPU time, in milliseconds.
type CPUSpent struct {
	ProcessMs  float64 `json:"process_ms"`            // server and harness (one process)
	DatabaseMs float64 `json:"database_ms,omitempty"` // the backends of this database (0: not measured)
	RedisMs    float64 `json:"redis_ms,omitempty"`    // Redis (0: not measured)
}

// Total is the phase's CPU time in all, in milliseconds.
func (c CPUSpent) Total() float64 { return c.ProcessMs + c.DatabaseMs + c.RedisMs }

// since is the CPU time spent from u0 to u. A backend that went away
// between the two takes its share with it; one that came is counted whole.
func (u cpuUse) since(u0 cpuUse) CPUSpent {
	c := CPUSpent{ProcessMs: ms(u.proc - u0.proc)}
	if u.dbOK && u0.dbOK {
		var d time.Duration
		for pid, t := range u.db {
			d += t - u0.db[pid]
		}
		c.DatabaseMs = ms(d)
	}
	if u.redisOK && u0.redisOK {
		c.RedisMs = ms(u.redis - u0.redis)
	}
	return c
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
