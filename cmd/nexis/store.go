package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

var storeFlags struct {
	dedup string
}

var storeCmd = &cobra.Command{
	Use:   "store",
	Short: "Inspect and maintain the store",
	Long: `Inspect and maintain the store: add trees, query path metadata,
references and roots, verify invariants and dedupe.

The store lives under --root at the logical directory --store (default
/store); its metadata is a RocksDB database in <store>/.nexis/db. Commands
that only read never wait for a writer.`,
}

func init() {
	storeCmd.PersistentFlags().StringVar(&storeFlags.dedup, "dedup", "auto", "how identical files are shared: `MODE` auto, reflink, hardlink, copy or none")
	rootCmd.AddCommand(storeCmd)
}

// openStore opens the store for writing: it waits for another writer.
func openStore() (*store.Store, error) {
	mode, err := store.ParseDedupMode(storeFlags.dedup)
	if err != nil {
		return nil, err
	}
	dir, err := physicalStoreDir()
	if err != nil {
		return nil, err
	}
	return store.Open(dir, store.Options{LogicalDir: storeDir(), Dedup: mode})
}

// openStoreReadOnly opens the store without taking the lock.
func openStoreReadOnly() (*store.Store, error) {
	dir, err := physicalStoreDir()
	if err != nil {
		return nil, err
	}
	return store.Open(dir, store.Options{LogicalDir: storeDir(), ReadOnly: true})
}

// openStoreRead opens the store for queries without taking the lock.
func openStoreRead() (*store.Store, error) {
	s, err := openStoreReadOnly()
	if errors.Is(err, store.ErrNotInitialised) {
		return nil, fmt.Errorf("the store %s is empty: nothing was ever added to it", storeDir())
	}
	return s, err
}

// openStorePaths opens the store for queries and parses args as valid
// store paths.
func openStorePaths(args []string) (*store.Store, []storepath.Path, error) {
	s, err := openStoreRead()
	if err != nil {
		return nil, nil, err
	}
	ps, err := storeArgs(s, args)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, ps, nil
}

// storeArgs parses store path arguments and checks they are valid.
func storeArgs(s *store.Store, args []string) ([]storepath.Path, error) {
	var out []storepath.Path
	for _, a := range args {
		p, _, err := s.ParsePath(a)
		if err != nil {
			return nil, err
		}
		ok, err := s.IsValid(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a valid path in the store", s.Logical(p))
		}
		out = append(out, p)
	}
	return out, nil
}
