// Package gcpace sets the Go collector's pace for short nexis commands
// whose garbage is nearly all one evaluation's.
package gcpace

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
)

// limit is the memory Late lets a command reach before it first
// collects: above a warm 10,000-package evaluation's, and low enough that
// a cold one peaks 10 MB higher than collecting from the start (at 192
// MiB it peaked 40 MB higher).
const limit = 128 << 20

var once sync.Once

// Late lets the command allocate up to limit bytes before the collector
// first runs, and then collects at percent (GOGC). A warm evaluation of
// 10,000 packages allocates about 110 MB, of which it keeps 60; the one
// collection it made on the way marked those 60 MB, a third of its CPU.
// nexis eval passes the default 100: a cold evaluation of 100,000
// packages keeps 600 MB, and collecting less often would add gigabytes.
// Only the first call sets the pace: a command that evaluates and opens
// its target at once asks twice.
func Late(percent int) {
	once.Do(func() {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(limit)
		// The first collection, at the limit, finds the sentinel
		// unreachable and runs its finalizer, which puts the pace back.
		sentinel := new([64]byte)
		runtime.SetFinalizer(sentinel, func(*[64]byte) {
			debug.SetGCPercent(percent)
			debug.SetMemoryLimit(math.MaxInt64)
		})
	})
}
