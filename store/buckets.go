package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nexisos/nexis/store/storepath"
)

// SweepBuckets reads every bucket of the store at the physical dir, each
// of workers taking whole first-level buckets: entry is called with each
// entry of a second-level bucket (rel "h0h1/h2h3/<name>", phys its path
// on this machine), stray with each entry of a first-level bucket that
// is not a bucket directory itself. Both are called from the workers at
// once. Top-level entries that are not bucket directories (.nexis,
// .trash, lost+found) are not the sweep's. A directory that cannot be
// read is an error. It is the one walk of the buckets: verify's garbage
// search, recover's registration and the collector's full sweep.
func SweepBuckets(dir string, workers int, entry func(rel, phys string), stray func(phys string)) error {
	top, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading store directory: %w", err)
	}
	var buckets []string
	for _, e := range top {
		if e.IsDir() && storepath.IsBucket(e.Name()) {
			buckets = append(buckets, e.Name())
		}
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = fmt.Errorf("reading store bucket: %w", err)
		}
		mu.Unlock()
	}
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(buckets); i += max(workers, 1) {
				b1 := buckets[i]
				sub, err := os.ReadDir(filepath.Join(dir, b1))
				if err != nil {
					fail(err)
					return
				}
				for _, b2 := range sub {
					d := filepath.Join(dir, b1, b2.Name())
					if !b2.IsDir() || !storepath.IsBucket(b2.Name()) {
						stray(d)
						continue
					}
					ents, err := os.ReadDir(d)
					if err != nil {
						fail(err)
						return
					}
					for _, e := range ents {
						entry(b1+"/"+b2.Name()+"/"+e.Name(), filepath.Join(d, e.Name()))
					}
				}
			}
		}(w)
	}
	wg.Wait()
	return first
}
