package parallel

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestDoRunsEveryIndexOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 64} {
		seen := make([]atomic.Int32, 100)
		if err := Do(len(seen), workers, func(i int) error { seen[i].Add(1); return nil }); err != nil {
			t.Fatal(err)
		}
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("workers %d: index %d ran %d times", workers, i, seen[i].Load())
			}
		}
	}
}

func TestDoStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int32
	err := Do(1000, 1, func(i int) error {
		ran.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || ran.Load() != 11 {
		t.Fatalf("err %v after %d", err, ran.Load())
	}
	if err := Do(1000, 4, func(i int) error {
		if i%7 == 3 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Fatalf("parallel: %v", err)
	}
}
