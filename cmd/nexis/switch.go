package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/lang"
)

var switchFlags struct {
	generation string
	dryRun     bool
}

func init() {
	cmd := command("switch [CONFIG]", cobra.MaximumNArgs(1), func(cmd *cobra.Command, args []string) error {
		if switchFlags.dryRun {
			if remoteSwitchFlags.hosts.Target != "" || remoteSwitchFlags.hosts.Build != "" {
				return usageError{errors.New("--dry-run plans on this root only: leave out --target-host and --build-host, or run nexis dry-activate on the target")}
			}
			if !cmd.Flags().Changed("generation") {
				return runDryActivate(cmd, args)
			}
		}
		if remote, err := remoteSwitch(cmd, args); remote {
			return err
		}
		if cmd.Flags().Changed("generation") {
			return switchToGenerationOf(func(t *activate.Target) (uint64, error) {
				return t.ResolveGeneration(switchFlags.generation)
			}, activate.ModeSwitch)
		}
		return switchConfig(args, activate.ModeSwitch)
	})
	addDryRunFlag(cmd)
	cmd.Flags().StringVar(&switchFlags.generation, "generation", "", "switch to generation `N` (a number, current or previous; see nexis generations list)")
	addConfigActivateFlags(cmd)
	addEvalCacheFlag(cmd)
	addRemoteSwitchFlags(cmd)
	register(rootCmd, cmd)
	// boot and test are a switch in another mode.
	for _, v := range []struct {
		use  string
		mode activate.Mode
	}{{"boot [CONFIG]", activate.ModeBoot}, {"test [CONFIG]", activate.ModeTest}} {
		c := command(v.use, cobra.MaximumNArgs(1), func(cmd *cobra.Command, args []string) error { return switchConfig(args, v.mode) })
		addConfigActivateFlags(c)
		addEvalCacheFlag(c)
		register(rootCmd, c)
	}
	rollback := command("rollback", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return switchToGenerationOf((*activate.Target).Previous, activate.ModeSwitch)
	})
	addActivateFlags(rollback)
	addDryRunFlag(rollback)
	dry := command("dry-activate [CONFIG]", cobra.MaximumNArgs(1), runDryActivate)
	jsonFlag(dry, "print the plan as JSON")
	addConfigActivateFlags(dry)
	register(rootCmd, rollback, dry)
}

// addConfigActivateFlags gives a verb that builds a config and
// activates it (switch, boot, test, dry-activate) its flags: -j, the
// activation's and the evaluation's.
func addConfigActivateFlags(cmd *cobra.Command) {
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
}

// switchConfig evaluates, realises and switches in mode.
func switchConfig(args []string, mode activate.Mode) error {
	ctx, stop := interruptible()
	defer stop()
	l := &deploy.Local{Host: here, Config: switchedConfig(args), Prints: os.Stderr}
	sw, err := l.Switch(ctx, func(hash string) activate.SwitchOptions { return switchOptions(mode, hash) })
	if err != nil {
		return err
	}
	defer sw.Done()
	sw.Result.Print(os.Stdout, os.Stderr, sw.Target, sw.Prev)
	return nil
}

// switchedConfig is the config a switch evaluates: from the evaluation
// cache when every file it read is unchanged (see lang.LookupEval), else
// evaluated, which refreshes the cache.
func switchedConfig(args []string) deploy.Config {
	cfg := here.ConfigPath(args)
	return deploy.Config{
		Cached: func() (deploy.Cached, bool) {
			opts, err := evalOptions()
			if err != nil || switchNoEvalCache {
				return deploy.Cached{}, false
			}
			c, ok := lang.LookupEval(cfg, opts)
			if !ok {
				return deploy.Cached{}, false
			}
			return deploy.Cached{Out: c.Out, ID: c.ID, Prints: c.Prints}, true
		},
		Evaluate: func() (*builtins.Derivation, deploy.Builder, error) {
			opts, err := evalOptions()
			if err != nil {
				return nil, nil, err
			}
			sys, err := lang.EvalAndSave(cfg, opts)
			if err != nil {
				reportEvalError(os.Stderr, err)
				return nil, nil, exitError{1}
			}
			return sys.Drv, systemBuild(sys), nil
		},
	}
}

// switchNoEvalCache is --no-eval-cache of switch, boot and test.
var switchNoEvalCache bool

func addEvalCacheFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&switchNoEvalCache, "no-eval-cache", false, "evaluate the config even when no file it reads changed since it was last evaluated")
}

// addDryRunFlag gives a command that switches --dry-run.
func addDryRunFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&switchFlags.dryRun, "dry-run", false, "print what activating would change on the root, and change nothing (a config's system is still built, as dry-activate does)")
}

// switchToGenerationOf switches to the generation pick names, picked
// with the target open (one store open per command: it is most of a
// rollback's cost).
func switchToGenerationOf(pick func(*activate.Target) (uint64, error), mode activate.Mode) error {
	return here.WithTarget(func(t *activate.Target) error {
		n, err := pick(t)
		if err != nil {
			return err
		}
		if switchFlags.dryRun {
			pv, err := deploy.GenerationPreview(t, n, switchOptions(mode, "").Options)
			if err != nil {
				return err
			}
			fmt.Printf("generation %d:\n", n)
			pv.Print(os.Stdout)
			return nil
		}
		prev := t.ActiveSystem()
		res, err := t.SwitchTo(n, switchOptions(mode, ""))
		if err != nil {
			return err
		}
		res.Print(os.Stdout, os.Stderr, t, prev)
		return nil
	})
}

func runDryActivate(cmd *cobra.Command, args []string) error {
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	return here.WithTarget(func(t *activate.Target) error {
		pv, err := deploy.NewPreview(t, sys.Drv, systemBuild(sys), switchOptions(activate.ModeTest, "").Options, interruptible)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(pv.Plan)
		}
		pv.Print(os.Stdout)
		return nil
	})
}
