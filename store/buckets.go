package store

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/store/storepath"
)

// isBucket reports whether n names a bucket: two characters of the hash
// alphabet (<store>/<h0h1>/<h2h3>/<hash>-<name>).
func isBucket(n string) bool {
	return len(n) == 2 && storepath.IsHashChar(n[0]) && storepath.IsHashChar(n[1])
}

// sweepBuckets reads every bucket of the store at dir: entry is called
// with each entry of a second-level bucket (rel "h0h1/h2h3/<name>", phys
// its path on this machine), stray with each entry of a first-level
// bucket that is not a bucket directory itself. Top-level entries that
// are not bucket directories (.nexis, .trash, lost+found) are not the
// sweep's. A directory that cannot be read is an error.
func sweepBuckets(dir string, entry func(rel, phys string), stray func(phys string)) error {
	top, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading store directory: %w", err)
	}
	for _, b1 := range top {
		if !b1.IsDir() || !isBucket(b1.Name()) {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, b1.Name()))
		if err != nil {
			return fmt.Errorf("reading store bucket: %w", err)
		}
		for _, b2 := range sub {
			d := filepath.Join(dir, b1.Name(), b2.Name())
			if !b2.IsDir() || !isBucket(b2.Name()) {
				stray(d)
				continue
			}
			ents, err := os.ReadDir(d)
			if err != nil {
				return fmt.Errorf("reading store bucket: %w", err)
			}
			for _, e := range ents {
				entry(b1.Name()+"/"+b2.Name()+"/"+e.Name(), filepath.Join(d, e.Name()))
			}
		}
	}
	return nil
}
