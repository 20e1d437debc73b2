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
}

func init() {
	lock := command("lock [CONFIG]", cobra.MaximumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return runLock(here.ConfigPath(args), false, nil)
	})
	jsonFlag(lock, "print the changes as JSON")
	lock.Flags().StringVar(&lockFlags.system, "system", lang.DefaultSystem, "target `PLATFORM` ({arch} of prebuilt URLs)")
	update := command("update [PKG...]", nil, func(cmd *cobra.Command, args []string) error {
		cfg := lockFlags.config
		if cfg == "" {
			cfg = here.ConfigPath(nil)
		}
		return runLock(cfg, true, args)
	})
	update.Flags().StringVarP(&lockFlags.config, "config", "c", "", "the config `FILE` (default: the system's)")
	jsonFlag(update, "print the changes as JSON")
	update.Flags().StringVar(&lockFlags.system, "system", lang.DefaultSystem, "target `PLATFORM` ({arch} of prebuilt URLs)")
	register(rootCmd, lock, update)
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
	if asJSON {
		return printJSON(l)
	}
	l.Print(os.Stdout, os.Stderr)
	return nil
}
