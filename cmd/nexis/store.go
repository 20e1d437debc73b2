package main

import (
	"github.com/spf13/cobra"
)

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
	storeCmd.PersistentFlags().StringVar(&here.Dedup, "dedup", "auto", "how identical files are shared: `MODE` auto, reflink, hardlink, copy or none")
	rootCmd.AddCommand(storeCmd)
}
