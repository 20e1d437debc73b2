package main

import (
	"errors"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
)

// nexis store verify, optimise and recover: the store's upkeep.
var storeVerifyFlags struct{ checkContents, repair, dryRun bool }

func init() {
	cmd := command("verify [CONFIG]", cobra.MaximumNArgs(1), runStoreVerify)
	f := cmd.Flags()
	f.BoolVar(&storeVerifyFlags.checkContents, "check-contents", false, "re-hash every registered path")
	f.BoolVar(&storeVerifyFlags.repair, "repair", false, "execute the plan: fix counters, move garbage to the trash, restore damaged paths")
	jsonFlag(cmd, "print the report as JSON")
	addEvalFlags(cmd)
	optimise := command("optimise", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		s, err := here.OpenStoreFor(!storeVerifyFlags.dryRun)
		if err != nil {
			return err
		}
		defer s.Close()
		if err := show(s.Optimise(storeVerifyFlags.dryRun, newProgress("optimising").Count())); err != nil {
			return err
		}
		return s.Close()
	})
	optimise.Aliases = []string{"optimize"}
	jsonFlag(optimise, "print JSON")
	optimise.Flags().BoolVar(&storeVerifyFlags.dryRun, "dry-run", false, "count what would be shared, and change nothing")
	recoverCmd := command("recover", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		rep, err := here.Recover(os.Stderr, newProgress("scanning").Count())
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(rep)
		}
		rep.Print(os.Stdout, os.Stderr, here.StoreDir())
		return nil
	})
	jsonFlag(recoverCmd, "print the report as JSON")
	register(storeCmd, cmd, optimise, recoverCmd)
}

func runStoreVerify(cmd *cobra.Command, args []string) error {
	s, err := here.OpenStoreFor(storeVerifyFlags.repair)
	if err != nil {
		return err
	}
	defer s.Close()
	opts := realise.VerifyOptions{
		Verify:  store.VerifyOptions{CheckContents: storeVerifyFlags.checkContents, Progress: newProgress("verifying").Count()},
		Repair:  storeVerifyFlags.repair,
		Sources: func(plan *store.RepairPlan) (realise.RepairSources, error) { return repairSources(args, plan) },
		Context: interruptible,
	}
	if !asJSON {
		opts.Out, opts.Diag = os.Stdout, os.Stderr
	}
	v, err := realise.VerifyStore(s, opts)
	if err != nil {
		return err
	}
	if asJSON {
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
