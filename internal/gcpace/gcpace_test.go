package gcpace

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// sink keeps an allocation from being optimised away.
var sink []byte

// TestNowEndsTheLatePace: the collection Now asks for puts the pace
// back, as the first at the limit would.
func TestNowEndsTheLatePace(t *testing.T) {
	// Late acts once per process: again for -count.
	once = sync.Once{}
	Late(100)
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("after Late, GOGC is %d, want off", p)
	}
	sink = make([]byte, limit/4)
	sink = nil
	Now()
	// Now's collection is in the background; its sentinel's finalizer
	// puts the pace back.
	for late.Load() {
		time.Sleep(time.Millisecond)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("after Now's collection, GOGC is %d, want 100", p)
	}
}

// TestLimitFollowsTheLiveHeap: after the late pace ends, the memory
// limit is the floor while the live heap is small, and twice the live
// heap once that is larger, so that a large evaluation is not collected
// over and over at the floor.
func TestLimitFollowsTheLiveHeap(t *testing.T) {
	once = sync.Once{}
	Late(200)
	sink = make([]byte, limit/4)
	sink = nil
	Now()
	for late.Load() {
		time.Sleep(time.Millisecond)
	}
	defer debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetGCPercent(100)
	if got := waitLimit(func(l int64) bool { return l == floor }); got != floor {
		t.Fatalf("with little live, the limit is %d, want the floor %d", got, floor)
	}
	// Live past half the floor: the next collection raises the limit.
	sink = make([]byte, floor)
	runtime.GC()
	if got := waitLimit(func(l int64) bool { return l >= 2*floor }); got < 2*floor {
		t.Fatalf("with %d bytes live, the limit is %d, want at least twice that", floor, got)
	}
	sink = nil
}

// waitLimit waits for the finalizer that follows each collection to set
// a limit ok accepts, and returns the limit then (or when it gave up).
func waitLimit(ok func(int64) bool) int64 {
	for range 2000 {
		if l := debug.SetMemoryLimit(-1); ok(l) {
			return l
		}
		time.Sleep(time.Millisecond)
	}
	return debug.SetMemoryLimit(-1)
}
