package gcpace

import (
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// sink keeps an allocation from being optimised away.
var sink []byte

// TestNowKeepsThePaceLate: the collection Now asks for leaves the pace
// late, and the next collection puts it back.
func TestNowKeepsThePaceLate(t *testing.T) {
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
	// arms another and clears early.
	for early.Load() {
		time.Sleep(time.Millisecond)
	}
	if !late.Load() {
		t.Fatal("the collection Now asked for put the pace back")
	}
	if p := debug.SetGCPercent(-1); p != -1 {
		t.Fatalf("after Now, GOGC is %d, want off", p)
	}
	runtime.GC()
	for late.Load() {
		time.Sleep(time.Millisecond)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("after the next collection, GOGC is %d, want 100", p)
	}
}
