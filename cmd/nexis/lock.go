package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/resolve"
)

var lockFlags struct {
	config string
	system string
	json   bool
}

func init() {
	lock := &cobra.Command{
		Use:   "lock [CONFIG]",
		Short: "Pin \"latest\" versions and missing hashes into nexis.lock",
		Long: `Resolve what evaluation may not look up itself and write it to nexis.lock
beside the config: the newest release tag of every package with
version = "latest" (by version order, from its git source), the commit of
tagged git sources, and the hashes of sources and prebuilt archives the
config leaves out. Entries already in the lock are kept; use nexis update
to move them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLock(here.ConfigPath(args), false, nil)
		},
	}
	lock.Flags().BoolVar(&lockFlags.json, "json", false, "print the changes as JSON")
	lock.Flags().StringVar(&lockFlags.system, "system", lang.DefaultSystem, "target `PLATFORM` ({arch} of prebuilt URLs)")
	update := &cobra.Command{
		Use:   "update [PKG...]",
		Short: "Re-resolve pinned packages (all, or the ones named) in nexis.lock",
		Long: `Resolve again the packages named (every pinned package when none is):
"latest" moves to the newest release, hashes are recomputed, and
nexis.lock is rewritten. The config is --config, or the system's.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := lockFlags.config
			if cfg == "" {
				cfg = here.ConfigPath(nil)
			}
			return runLock(cfg, true, args)
		},
	}
	update.Flags().StringVarP(&lockFlags.config, "config", "c", "", "the config `FILE` (default: the system's)")
	update.Flags().BoolVar(&lockFlags.json, "json", false, "print the changes as JSON")
	update.Flags().StringVar(&lockFlags.system, "system", lang.DefaultSystem, "target `PLATFORM` ({arch} of prebuilt URLs)")
	rootCmd.AddCommand(lock, update)
}

func runLock(configFile string, update bool, only []string) error {
	ctx, stop := interruptible()
	defer stop()
	l, err := resolve.Lock(ctx, configFile, resolve.Options{
		System: lockFlags.system,
		Update: update,
		Only:   only,
		Note: func(msg string) {
			if here.Verbosity > realise.Quiet {
				fmt.Fprintf(os.Stderr, "nexis: %s\n", msg)
			}
		},
	})
	if err != nil {
		return err
	}
	if err := l.Write(); err != nil {
		return err
	}
	if lockFlags.json {
		return printJSON(l)
	}
	l.Print(os.Stdout, os.Stderr)
	return nil
}
