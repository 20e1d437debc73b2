package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/store"
)

var storeRecoverFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:   "recover",
		Short: "Rebuild a store's lost metadata from the paths on disk, deleting nothing",
		Long: `Rebuild the metadata of a store whose database is missing, unreadable or
not its own, which every other command refuses to use. Nothing is
deleted:

  - the unusable database is renamed to .nexis/db.lost-<time> and kept;
  - when only its CURRENT file was lost, a copy with CURRENT restored
    becomes the database again, with every registration, root and
    generation as it was;
  - otherwise a new database is filled from the buckets: each path as
    ingestion left it (read-only, mtime 1) is hashed and registered, with
    the other present paths its files mention as references, and the
    content address of a source or fetch whose name its bytes derive;
    generations are recorded again from the profile links in the state
    directory, and every path nothing refers to is kept by a root
    "recovered/<hash>-<name>" until you drop them
    (nexis store remove-root --prefix recovered/).

What it cannot explain (names that are no store paths, trees changed
after they were stored, mentions of paths that are not there, generations
whose paths are gone) is listed and left in place. Run
nexis store verify --check-contents afterwards.`,
		Args: cobra.NoArgs,
		RunE: runStoreRecover,
	}
	cmd.Flags().BoolVar(&storeRecoverFlags.json, "json", false, "print the report as JSON")
	storeCmd.AddCommand(cmd)
}

func runStoreRecover(cmd *cobra.Command, args []string) error {
	root, err := here.OpenRoot()
	if err != nil {
		return err
	}
	dir, err := here.PhysicalStoreDir()
	if err != nil {
		return err
	}
	gens, problems, err := activate.ProfileGenerations(root, here.StateDir(), here.StoreDir())
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "nexis: warning: %s\n", p)
	}
	rep, err := store.Recover(dir, store.RecoverOptions{
		LogicalDir:  here.StoreDir(),
		Generations: gens,
		Progress:    progressFunc("scanning"),
	})
	if err != nil {
		return err
	}
	if storeRecoverFlags.json {
		return printJSON(rep)
	}
	if rep.Intact {
		fmt.Fprintf(os.Stderr, "the metadata of %s is intact: nothing to recover (nexis store verify checks it)\n", here.StoreDir())
		return nil
	}
	if rep.KeptDatabase != "" {
		fmt.Printf("kept the unusable database as %s\n", rep.KeptDatabase)
	}
	if rep.Salvaged {
		fmt.Println("restored the database from its own files (its CURRENT file was missing)")
	} else {
		fmt.Printf("registered %d paths found on disk (%d content-addressed, checked against their address)\n", rep.Registered, rep.ContentAddressed)
	}
	if len(rep.Generations) > 0 {
		fmt.Printf("re-rooted generations %v from the profile links\n", rep.Generations)
	}
	if rep.RecoveredRoots > 0 {
		fmt.Printf("kept %d unreferenced paths under roots %s<hash>-<name> (drop them with nexis store remove-root --prefix %s)\n", rep.RecoveredRoots, store.RecoveredRootPrefix, store.RecoveredRootPrefix)
	}
	for _, u := range rep.Unexplained {
		fmt.Printf("unexplained: %s: %s\n", u.Path, u.Why)
	}
	fmt.Fprintf(os.Stderr, "recovered %s: %d unexplained, left in place; run nexis store verify --check-contents\n", here.StoreDir(), len(rep.Unexplained))
	return nil
}
