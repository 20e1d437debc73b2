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
// 60 MB), and low enough that a cold one, which collects once its config
// is read (Now), peaks near twice what it keeps (at 128 MiB it peaked 20
// MiB higher, with as many collections).
const limit = 96 << 20

var (
	once sync.Once
	// early is set while a collection Now asked for runs before the
	// first at the limit: it leaves the pace late.
	early atomic.Bool
	// late is set while the pace is late: no collection has run since
	// Late but those Now asked for.
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
		arm(percent)
	})
}

// arm sets a sentinel whose finalizer, run by the next collection that
// finds it unreachable, puts the pace back, or arms another after a
// collection Now asked for.
func arm(percent int) {
	sentinel := new([64]byte)
	runtime.SetFinalizer(sentinel, func(*[64]byte) {
		if early.CompareAndSwap(true, false) {
			arm(percent)
			return
		}
		late.Store(false)
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(math.MaxInt64)
	})
}

// Now collects in the background, if the pace is still late, and keeps
// it late: a command calls it where what it allocated so far is mostly
// garbage, what it keeps is small, and it will allocate past the limit
// anyway (a cold evaluation, once its config is read). The collection
// costs little then, and the one at the limit comes that much later.
func Now() {
	if !late.Load() || allocated() < limit/4 || !early.CompareAndSwap(false, true) {
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
