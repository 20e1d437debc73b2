package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store"
)

var storeVerifyFlags struct {
	checkContents, repair, json bool
}

func init() {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the store's invariants",
		Long: `Check the store's invariants: every registered path exists (and, with
--check-contents, hashes to its recorded tree hash); references point to
registered paths; referrer edges, refcounts and content counts equal what
the references, roots and manifests imply; every directory in the buckets
is registered. Exits 1 when an invariant is broken.

Leftovers of interrupted work (unregistered directories, unused pool
entries) are reported as garbage; --repair moves them to the trash and
rewrites any wrong counter.`,
		Args: cobra.NoArgs,
		RunE: runStoreVerify,
	}
	f := cmd.Flags()
	f.BoolVar(&storeVerifyFlags.checkContents, "check-contents", false, "re-hash every registered path")
	f.BoolVar(&storeVerifyFlags.repair, "repair", false, "fix counters and move garbage to the trash")
	f.BoolVar(&storeVerifyFlags.json, "json", false, "print the report as JSON")
	storeCmd.AddCommand(cmd)
}

func runStoreVerify(cmd *cobra.Command, args []string) error {
	var (
		s   *store.Store
		err error
	)
	if storeVerifyFlags.repair {
		s, err = openStore()
	} else {
		s, err = openStoreRead()
	}
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.Verify(store.VerifyOptions{
		CheckContents: storeVerifyFlags.checkContents,
		Repair:        storeVerifyFlags.repair,
		Progress:      progressFunc("verifying"),
	})
	if err != nil {
		return err
	}
	if storeVerifyFlags.json {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		for _, e := range rep.Errors {
			fmt.Println("error:", e)
		}
		for _, g := range rep.Garbage {
			fmt.Println("garbage:", g)
		}
		for _, w := range rep.Warnings {
			fmt.Println("warning:", w)
		}
		for _, r := range rep.Repaired {
			fmt.Println("repaired:", r)
		}
		fmt.Fprintf(os.Stderr, "verified %d paths: %d errors, %d garbage\n", rep.Paths, len(rep.Errors), len(rep.Garbage))
	}
	if err := s.Close(); err != nil {
		return err
	}
	if !rep.Clean() {
		return exitError{1}
	}
	return nil
}
