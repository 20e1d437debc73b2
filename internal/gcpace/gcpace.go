// Package gcpace sets the Go collector's pace for short nexis commands
// whose garbage is nearly all one evaluation's.
package gcpace

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// limit is the memory Late lets a command reach before it first
// collects: above a warm 10,000-package evaluation's (it allocates about
// 60 MB). A cold one collects earlier, once its config is read (Now).
const limit = 96 << 20

var (
	once sync.Once
	// late is set while the pace is late: no collection has run since
	// Late.
	late atomic.Bool
)

// Late lets the command allocate up to limit bytes before the collector
// first runs, and then collects at percent (GOGC). A warm evaluation of
// 10,000 packages allocates about 60 MB, of which it keeps 35: a
// collection on the way would mark those 35 MB for nothing.
// nexis eval passes the default 100: a cold evaluation of 100,000
// packages keeps 600 MB, and collecting less often would add gigabytes.
// Only the first call sets the pace: a command that evaluates and opens
// its target at once asks twice.
func Late(percent int) {
	once.Do(func() {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(limit)
		late.Store(true)
		// The first collection to find the sentinel unreachable,
		// whoever asked for it, puts the pace back.
		sentinel := new([64]byte)
		runtime.SetFinalizer(sentinel, func(*[64]byte) {
			late.Store(false)
			debug.SetGCPercent(percent)
			debug.SetMemoryLimit(math.MaxInt64)
		})
	})
}

// Now collects in the background, if the pace is still late, and so
// ends it: a command calls it where what it allocated so far is mostly
// garbage, what it keeps is small, and it will allocate past the limit
// anyway (a cold evaluation, once its config is read). The collection
// costs little then. Keeping the pace late after it, to the limit, cost
// a cold 10,000-package evaluation 14 MiB of peak memory (118 against
// 104 MiB) for one collection fewer and no less CPU, and did not change
// 100,000.
func Now() {
	if !late.Load() || allocated() < limit/4 {
		return
	}
	go runtime.GC()
}

// allocated is how many bytes the command has allocated so far.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
