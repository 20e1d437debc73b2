// Package parallel runs the iterations of a loop on several goroutines:
// the store's file work (placing, hashing, deleting) waits on the disk
// more than on the CPU, so it runs wider than the core count.
package parallel

import (
	"sync"
	"sync/atomic"
)

// Do runs fn(0..n-1) on up to workers goroutines, each taking the next
// index, and returns the first error; after an error no new index
// starts. With one worker (or one index) it is a plain loop.
func Do(n, workers int, fn func(i int) error) error {
	return DoWith(n, workers, func() struct{} { return struct{}{} }, func(struct{}) {},
		func(_ struct{}, i int) error { return fn(i) })
}

// DoWith is Do for loops whose goroutines each need their own state (a
// hasher, a buffer): each goroutine makes one with newState, passes it
// to every fn it runs, and hands it to done when it stops.
func DoWith[S any](n, workers int, newState func() S, done func(S), fn func(s S, i int) error) error {
	workers = min(workers, n)
	if workers <= 1 {
		s := newState()
		defer done(s)
		for i := 0; i < n; i++ {
			if err := fn(s, i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		next  atomic.Int64
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newState()
			defer done(s)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed() {
					return
				}
				if err := fn(s, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
