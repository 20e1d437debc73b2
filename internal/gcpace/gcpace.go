// Package gcpace sets the Go collector's pace for short nexis commands
// whose garbage is nearly all one evaluation's.
package gcpace

import (
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
// first runs, and then collects at percent (GOGC), within a memory limit
// that follows the live heap (see follow). A warm evaluation of 10,000
// packages allocates about 60 MB, of which it keeps 35: a collection on
// the way would mark those 35 MB for nothing. nexis eval passes 200.
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
			follow()
		})
	})
}

// floor is the least memory limit follow sets. A cold evaluation of
// 10,000 packages keeps 20-30 MB as it goes. At GOGC 100 and no limit,
// the heap's spans, fragmented by the config's decoding, took its peak
// memory anywhere from 96 to 106 MiB; at GOGC 200 within this floor it
// collects as often (five times) and peaks at 97-98 MiB every time, in
// the same time (16 alternated runs each: 277 against 273 ms wall, 502
// against 508 ms CPU). A floor of 72 MiB peaked at 93 MiB for 14 ms
// more CPU.
const floor = 76 << 20

// follow sets the memory limit after each collection: twice the live
// heap, and an eighth more for what is not heap, but at least floor. So
// percent paces a small heap up to the floor, and a large one (100,000
// packages keep 300 MB) collects as at GOGC 100 rather than at percent,
// which would add hundreds of megabytes: 622 MiB at its peak, against
// 667 at GOGC 100 without a limit, in 1% more time (3 runs). It runs
// again after each collection, for as long as the command does.
func follow() {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := s[0].Value.Uint64()
	debug.SetMemoryLimit(int64(max(floor, 2*live+live/8)))
	sentinel := new([64]byte)
	runtime.SetFinalizer(sentinel, func(*[64]byte) { follow() })
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
