package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store/gc"
)

var gcFlags struct {
	dryRun    bool
	maxFreed  string
	olderThan string
	workers   int
	full      bool
	repair    bool
	wait      bool
}

func init() {
	cmd := command("gc", cobra.NoArgs, runGC)
	f := cmd.Flags()
	f.BoolVar(&gcFlags.dryRun, "dry-run", false, "print what would be deleted, and stop")
	f.StringVar(&gcFlags.maxFreed, "max-freed", "", "stop after freeing `SIZE` bytes (1024, 500M, 10G)")
	f.StringVar(&gcFlags.olderThan, "older-than", "", "only delete garbage registered more than `DURATION` ago (90m, 12h, 30d, 2w)")
	jsonFlag(cmd, "print the result as JSON")
	f.IntVar(&gcFlags.workers, "workers", 0, "rename and delete with `N` workers in parallel (default: one per core to rename, four per core to delete)")
	f.BoolVar(&gcFlags.full, "full", false, "mark from the roots and sweep every bucket (slow: reads the whole store)")
	f.BoolVar(&gcFlags.repair, "repair", false, "with --full: fix wrong counts, move unregistered directories to the trash")
	f.BoolVar(&gcFlags.wait, "wait", false, "delete the trash before returning, instead of in the background")

	var lockFD int
	worker := command("trash-worker", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return here.RunTrashWorker(lockFD, gcFlags.workers)
	})
	worker.Hidden = true
	worker.Flags().IntVar(&lockFD, "lock-fd", -1, "descriptor of the trash lock the parent took (internal)")
	worker.Flags().IntVar(&gcFlags.workers, "workers", 0, "delete with `N` workers in parallel (default: four per core)")
	register(rootCmd, cmd, worker)
}

// finishInterruptedGC runs before every command (startUp) but the
// trash worker: see gc.Startup.
func finishInterruptedGC(cmd *cobra.Command) {
	if cmd.Name() == "trash-worker" {
		return
	}
	for _, err := range here.FinishInterruptedGC(gcFlags.workers) {
		fmt.Fprintf(os.Stderr, "nexis: warning: %v\n", err)
	}
}

func runGC(cmd *cobra.Command, args []string) error {
	bar := newProgress("")
	defer bar.End()
	opts := gc.Options{DryRun: gcFlags.dryRun, Workers: gcFlags.workers, Progress: bar.Phases(), Wait: gcFlags.wait, Launch: here.TrashLauncher(gcFlags.workers)}
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
	if gcFlags.repair && !gcFlags.full {
		return fmt.Errorf("--repair goes with --full")
	}
	if opts.Workers < 0 {
		return fmt.Errorf("--workers must be at least 1 (or 0 for the default)")
	}
	if opts.Progress == nil {
		opts.Progress = func(string, int, int) {}
	}
	s, err := here.OpenStore()
	if err != nil {
		return err
	}
	defer s.Close()
	if !gcFlags.full {
		st, err := gc.CollectAndClose(s, opts)
		bar.End()
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(st)
		}
		st.Print(os.Stdout, os.Stderr, gcFlags.maxFreed, gcFlags.olderThan)
		return nil
	}
	rep, err := gc.FullAndClose(s, gc.FullOptions{Options: opts, Repair: gcFlags.repair})
	bar.End()
	if err := show(rep, err); err != nil {
		return err
	}
	if rep.NeedsRepair() && !gcFlags.repair {
		fmt.Fprintf(os.Stderr, "nexis: the store needs repair: run `%s`\n", hint.Command("gc", "--full", "--repair"))
		return exitError{1}
	}
	return nil
}
