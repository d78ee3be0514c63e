package app

import (
	"sync"
	"time"
)

// zones keeps the time zones loaded so far: time.LoadLocation reads and
// parses the zone's file on every call, and pages, answers and jobs show
// each time in its venue's zone.
var zones sync.Map // name -> *time.Location

// Timezone is time.LoadLocation, each zone read once. A name the zone
// database does not know is not kept (it is looked up again next time).
func Timezone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, l)
	return l, nil
}
