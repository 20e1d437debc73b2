package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/trash"
)

var gcFlags struct {
	dryRun    bool
	maxFreed  string
	olderThan string
	json      bool
	workers   int
	full      bool
	repair    bool
	wait      bool
}

func init() {
	cmd := &cobra.Command{
		Use:  "gc",
		Args: cobra.NoArgs,
		RunE: runGC,
	}
	f := cmd.Flags()
	f.BoolVar(&gcFlags.dryRun, "dry-run", false, "print what would be deleted, and stop")
	f.StringVar(&gcFlags.maxFreed, "max-freed", "", "stop after freeing `SIZE` bytes (1024, 500M, 10G)")
	f.StringVar(&gcFlags.olderThan, "older-than", "", "only delete garbage registered more than `DURATION` ago (90m, 12h, 30d, 2w)")
	f.BoolVar(&gcFlags.json, "json", false, "print the result as JSON")
	f.IntVar(&gcFlags.workers, "workers", 0, "rename and delete with `N` workers in parallel (default: one per core to rename, four per core to delete)")
	f.BoolVar(&gcFlags.full, "full", false, "mark from the roots and sweep every bucket (slow: reads the whole store)")
	f.BoolVar(&gcFlags.repair, "repair", false, "with --full: fix wrong counts, move unregistered directories to the trash")
	f.BoolVar(&gcFlags.wait, "wait", false, "delete the trash before returning, instead of in the background")
	register(rootCmd, cmd)

	var lockFD int
	worker := &cobra.Command{
		Use:    "trash-worker",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := here.PhysicalStoreDir()
			if err != nil {
				return err
			}
			_, err = trash.RunWorker(dir, lockFD, trash.Options{Workers: gcFlags.workers})
			return err
		},
	}
	worker.Flags().IntVar(&lockFD, "lock-fd", -1, "descriptor of the trash lock the parent took (internal)")
	worker.Flags().IntVar(&gcFlags.workers, "workers", 0, "delete with `N` workers in parallel (default: four per core)")
	register(rootCmd, worker)
}

// trashLauncher starts this same binary as the trash worker of the
// store, with the flags that locate it.
func trashLauncher() trash.Launcher {
	args := []string{"--root", here.Root, "--store", here.StoreDir(), "trash-worker", "--lock-fd", strconv.Itoa(trash.LockFD)}
	if gcFlags.workers > 0 {
		args = append(args, "--workers", strconv.Itoa(gcFlags.workers))
	}
	return gc.SelfLauncher(args)
}

// finishInterruptedGC runs before every command (startUp) but the
// trash worker: see gc.Startup.
func finishInterruptedGC(cmd *cobra.Command) {
	if cmd.Name() == "trash-worker" {
		return
	}
	dir, err := here.PhysicalStoreDir()
	if err != nil {
		return // the command says what is wrong with --root
	}
	for _, err := range gc.Startup(dir, here.StoreDir(), trashLauncher()) {
		fmt.Fprintf(os.Stderr, "nexis: warning: %v\n", err)
	}
}

func runGC(cmd *cobra.Command, args []string) error {
	opts := gc.Options{DryRun: gcFlags.dryRun, Workers: gcFlags.workers, Progress: gcProgress(), Wait: gcFlags.wait, Launch: trashLauncher()}
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
	if gcFlags.full {
		return runGCFull(s, opts)
	}
	st, err := gc.CollectAndClose(s, opts)
	if err != nil {
		return err
	}
	endProgress()
	if gcFlags.json {
		return printJSON(st)
	}
	st.Print(os.Stdout, os.Stderr, gcFlags.maxFreed, gcFlags.olderThan)
	return nil
}

func runGCFull(s *store.Store, opts gc.Options) error {
	rep, err := gc.FullAndClose(s, gc.FullOptions{Options: opts, Repair: gcFlags.repair})
	if err != nil {
		return err
	}
	endProgress()
	if gcFlags.json {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		rep.Print(os.Stdout)
	}
	if rep.NeedsRepair() && !gcFlags.repair {
		fmt.Fprintf(os.Stderr, "nexis: the store needs repair: run `%s`\n", hint.Command("gc", "--full", "--repair"))
		return exitError{1}
	}
	return nil
}
