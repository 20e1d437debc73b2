package gcpace

import (
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
