package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/builtins"
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

// verifyJSON is the --json form: the report, and what a repair did.
type verifyJSON struct {
	*store.VerifyReport
	Repair *realise.RepairReport `json:"repair,omitempty"`
	// After is the verification that follows a repair.
	After *store.VerifyReport `json:"after,omitempty"`
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
	vopts := store.VerifyOptions{CheckContents: storeVerifyFlags.checkContents, Progress: progressFunc("verifying")}
	rep, err := s.Verify(vopts)
	if err != nil {
		return err
	}
	out := verifyJSON{VerifyReport: rep}
	if !storeVerifyFlags.json {
		printVerifyReport(rep)
	}
	final := rep
	if storeVerifyFlags.repair && !rep.Plan.Empty() {
		m, roots, opts, err := repairSources(args, rep.Plan)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		rr, err := m.Repair(ctx, s, rep.Plan, roots, opts)
		out.Repair = rr
		if !storeVerifyFlags.json && rr != nil {
			printRepairReport(rr)
		}
		if err != nil {
			return err
		}
		if final, err = s.Verify(vopts); err != nil {
			return err
		}
		out.After = final
		if !storeVerifyFlags.json {
			fmt.Fprintf(os.Stderr, "after the repair: %d errors, %d garbage\n", len(final.Errors), len(final.Garbage))
		}
	}
	if storeVerifyFlags.json {
		if err := printJSON(out); err != nil {
			return err
		}
	}
	if err := s.Close(); err != nil {
		return err
	}
	if !final.Clean() {
		return exitError{1}
	}
	return nil
}

func printVerifyReport(rep *store.VerifyReport) {
	for _, e := range rep.Errors {
		fmt.Println("error:", e)
	}
	for _, g := range rep.Garbage {
		fmt.Println("garbage:", g)
	}
	for _, w := range rep.Warnings {
		fmt.Println("warning:", w)
	}
	p := rep.Plan
	if !p.Empty() {
		fmt.Println("plan (--repair does this):")
		if p.RewriteCounters {
			fmt.Println("  rewrite the counters from edges, roots and manifests")
		}
		if n := len(p.Trash); n > 0 {
			fmt.Printf("  move %d unregistered directories to the trash\n", n)
		}
		if n := len(p.RemovePool); n > 0 {
			fmt.Printf("  remove %d unused pool entries\n", n)
		}
		if p.RestorePool > 0 {
			fmt.Printf("  restore %d pool entries\n", p.RestorePool)
		}
		for _, d := range p.Restore {
			fmt.Printf("  restore %s (rebuild or substitute)\n", d.StorePath)
		}
	}
	fmt.Fprintf(os.Stderr, "verified %d paths: %d errors, %d garbage\n", rep.Paths, len(rep.Errors), len(rep.Garbage))
}

func printRepairReport(rr *realise.RepairReport) {
	for _, r := range rr.Store {
		fmt.Println("repaired:", r)
	}
	for _, r := range rr.Restored {
		fmt.Printf("restored: %s: %s\n", r.Path, r.How)
	}
	for _, r := range rr.NotRestored {
		fmt.Printf("not restored: %s: %s\n", r.Path, r.How)
	}
}

// repairSources evaluates the config that may rebuild damaged paths, and
// opens its caches: only when the plan has paths to restore. Without a
// config (none given, none on the system) nothing is rebuilt or
// substituted, and the report says so.
func repairSources(args []string, plan *store.RepairPlan) (*realise.Machine, []*builtins.Derivation, realise.Options, error) {
	m, err := machine()
	if err != nil {
		return nil, nil, realise.Options{}, err
	}
	opts := realise.Options{LogDir: m.LogDir}
	if len(plan.Restore) == 0 {
		return m, nil, opts, nil
	}
	if _, err := os.Stat(here.ConfigPath(args)); len(args) == 0 && errors.Is(err, fs.ErrNotExist) {
		return m, nil, opts, nil
	}
	sys, err := evaluate(args)
	if err != nil {
		return nil, nil, opts, err
	}
	if opts, err = m.Options(settings(sys).Caches); err != nil {
		return nil, nil, opts, err
	}
	roots := []*builtins.Derivation{sys.Drv}
	for _, item := range sys.Packages.Items() {
		if d, ok := item[1].(*builtins.Derivation); ok {
			roots = append(roots, d)
		}
	}
	return m, roots, opts, nil
}
