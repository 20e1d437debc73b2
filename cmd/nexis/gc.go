package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store/gc"
)

// gcOpts is the collection gc's flags ask for.
var gcOpts gc.FullOptions

var gcFlags struct {
	maxFreed, olderThan string
	full                bool
}

func init() {
	cmd := command("gc", cobra.NoArgs, runGC)
	f := cmd.Flags()
	f.BoolVar(&gcOpts.DryRun, "dry-run", false, "print what would be deleted, and stop")
	f.StringVar(&gcFlags.maxFreed, "max-freed", "", "stop after freeing `SIZE` bytes (1024, 500M, 10G)")
	f.StringVar(&gcFlags.olderThan, "older-than", "", "only delete garbage registered more than `DURATION` ago (90m, 12h, 30d, 2w)")
	jsonFlag(cmd, "print the result as JSON")
	f.IntVar(&gcOpts.Workers, "workers", 0, "rename and delete with `N` workers in parallel (default: one per core to rename, four per core to delete)")
	f.BoolVar(&gcFlags.full, "full", false, "mark from the roots and sweep every bucket (slow: reads the whole store)")
	f.BoolVar(&gcOpts.Repair, "repair", false, "with --full: fix wrong counts, move unregistered directories to the trash")
	f.BoolVar(&gcOpts.Wait, "wait", false, "delete the trash before returning, instead of in the background")

	var lockFD int
	worker := command("trash-worker", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return here.RunTrashWorker(lockFD, gcOpts.Workers)
	})
	worker.Hidden = true
	worker.Flags().IntVar(&lockFD, "lock-fd", -1, "descriptor of the trash lock the parent took (internal)")
	worker.Flags().IntVar(&gcOpts.Workers, "workers", 0, "delete with `N` workers in parallel (default: four per core)")
	register(rootCmd, cmd, worker)
}

func runGC(cmd *cobra.Command, args []string) error {
	bar := newProgress("")
	defer bar.End()
	opts := &gcOpts.Options
	opts.Launch = here.TrashLauncher(opts.Workers)
	if opts.Progress = bar.Phases(); opts.Progress == nil {
		opts.Progress = func(string, int, int) {}
	}
	var err error
	if gcFlags.maxFreed != "" {
		if opts.MaxFreed, err = parseSize(gcFlags.maxFreed); err != nil {
			return fmt.Errorf("--max-freed: %w", err)
		}
	}
	if gcFlags.olderThan != "" {
		if opts.OlderThan, err = parseAge(gcFlags.olderThan); err != nil {
			return fmt.Errorf("--older-than: %w", err)
		}
	}
	if gcOpts.Repair && !gcFlags.full {
		return fmt.Errorf("--repair goes with --full")
	}
	if opts.Workers < 0 {
		return fmt.Errorf("--workers must be at least 1 (or 0 for the default)")
	}
	st, rep, err := here.Collect(gcOpts, gcFlags.full)
	bar.End()
	switch {
	case err != nil:
		return err
	case asJSON && st != nil:
		return printJSON(st)
	case st != nil:
		st.Print(os.Stdout, os.Stderr, gcFlags.maxFreed, gcFlags.olderThan)
		return nil
	}
	if err := show(rep, nil); err != nil {
		return err
	}
	if rep.NeedsRepair() && !gcOpts.Repair {
		fmt.Fprintf(os.Stderr, "nexis: the store needs repair: run `%s`\n", hint.Command("gc", "--full", "--repair"))
		return exitError{1}
	}
	return nil
}
