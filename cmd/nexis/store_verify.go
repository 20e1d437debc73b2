package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
)

var storeVerifyFlags struct {
	checkContents, repair, json bool
}

func init() {
	cmd := &cobra.Command{
		Use:   "verify [CONFIG]",
		Short: "Check the store's invariants, and repair what is broken",
		Long: `Check the store's invariants: every registered path exists (and, with
--check-contents, hashes to its recorded tree hash, matches its content
address and is normalised); references point to registered paths;
referrer edges, refcounts and content counts equal what the references,
roots and manifests imply; every directory in the buckets is registered.
Exits 1 when an invariant is broken.

The report ends with the plan of repairs. --repair executes exactly that
plan: wrong counters are rewritten, leftovers of interrupted work
(unregistered directories, unused pool entries) move to the trash, and
damaged paths (missing, or not the registered bytes) are restored, as
nix-store --verify --check-contents --repair does: substituted from the
caches of CONFIG's [nexis.substituters], rebuilt from the derivations of
CONFIG (default: the system's /etc/nexis/config.toml under --root), or
copied again from a path() source. Every new copy must be the registered
one; what cannot be restored is listed with the reason and left in place,
never deleted. After a repair the store is verified again, and the exit
status says whether it is clean.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runStoreVerify,
	}
	f := cmd.Flags()
	f.BoolVar(&storeVerifyFlags.checkContents, "check-contents", false, "re-hash every registered path")
	f.BoolVar(&storeVerifyFlags.repair, "repair", false, "execute the plan: fix counters, move garbage to the trash, restore damaged paths")
	f.BoolVar(&storeVerifyFlags.json, "json", false, "print the report as JSON")
	addEvalFlags(cmd)
	storeCmd.AddCommand(cmd)
}

func runStoreVerify(cmd *cobra.Command, args []string) error {
	var (
		s   *store.Store
		err error
	)
	if storeVerifyFlags.repair {
		s, err = here.OpenStore()
	} else {
		s, err = here.OpenStoreRead()
	}
	if err != nil {
		return err
	}
	defer s.Close()
	opts := realise.VerifyOptions{
		Verify:  store.VerifyOptions{CheckContents: storeVerifyFlags.checkContents, Progress: progressFunc("verifying")},
		Repair:  storeVerifyFlags.repair,
		Sources: func(plan *store.RepairPlan) (realise.RepairSources, error) { return repairSources(args, plan) },
		Context: interruptible,
	}
	if !storeVerifyFlags.json {
		opts.Out, opts.Diag = os.Stdout, os.Stderr
	}
	v, err := realise.VerifyStore(s, opts)
	if err != nil {
		return err
	}
	if storeVerifyFlags.json {
		if err := printJSON(v); err != nil {
			return err
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	if !v.Final().Clean() {
		return exitError{1}
	}
	return nil
}

// repairSources evaluates the config that may rebuild damaged paths, and
// opens its caches: only when the plan has paths to restore. Without a
// config (none given, none on the system) nothing is rebuilt or
// substituted, and the report says so.
func repairSources(args []string, plan *store.RepairPlan) (realise.RepairSources, error) {
	m, err := machine()
	if err != nil {
		return realise.RepairSources{}, err
	}
	src := realise.RepairSources{Machine: m, Options: realise.Options{LogDir: m.LogDir}}
	if len(plan.Restore) == 0 {
		return src, nil
	}
	if _, err := os.Stat(here.ConfigPath(args)); len(args) == 0 && errors.Is(err, fs.ErrNotExist) {
		return src, nil
	}
	sys, err := evaluate(args)
	if err != nil {
		return src, err
	}
	if src.Options, err = m.Options(settings(sys).Caches); err != nil {
		return src, err
	}
	src.Roots = sys.Roots()
	return src, nil
}
