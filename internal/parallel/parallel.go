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
	workers = min(workers, n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if err := fn(i); err != nil {
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
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed() {
					return
				}
				if err := fn(i); err != nil {
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
