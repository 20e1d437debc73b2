package main

import (
	"os"

	"github.com/spf13/cobra"
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
	rep, err := here.Recover(os.Stderr, progressFunc("scanning"))
	if err != nil {
		return err
	}
	if storeRecoverFlags.json {
		return printJSON(rep)
	}
	rep.Print(os.Stdout, os.Stderr, here.StoreDir())
	return nil
}
