package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/store/storepath"
)

var switchFlags struct {
	generation uint64
}

func init() {
	cmd := &cobra.Command{
		Use:   "switch [CONFIG]",
		Short: "Build the config and make it the running system and the boot default",
		Long: `Evaluate the config, realise its system, record it as a new generation
(none when it already is the current one), activate it on the root and
make it the boot default. Generations beyond [nexis.generations]
keep_last lose their roots (pinned ones stay); with auto_cleanup the
garbage collector runs after.

--generation N switches to an existing generation instead: nothing is
evaluated or built.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if remote, err := remoteSwitch(cmd, args); remote {
				return err
			}
			if cmd.Flags().Changed("generation") {
				return switchToGeneration(switchFlags.generation, activate.ModeSwitch)
			}
			return switchConfig(args, activate.ModeSwitch)
		},
	}
	cmd.Flags().Uint64Var(&switchFlags.generation, "generation", 0, "switch to generation `N` (see nexis generations list)")
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
	addEvalCacheFlag(cmd)
	addRemoteSwitchFlags(cmd)
	cmd.Long += remoteSwitchHelp
	rootCmd.AddCommand(cmd)
}

// switchConfig evaluates, realises and switches in mode.
func switchConfig(args []string, mode activate.Mode) error {
	debug.SetGCPercent(400) // see openTargetFor
	// Evaluating and opening the store writable are each about a third
	// of a switch and need different cores (Go and RocksDB), so they run
	// at once: a one-file switch takes 113 ms instead of 145. An
	// unchanged config would do with a read-only open, but waiting for
	// the evaluation to know that costs more than the writable open does
	// beside it.
	type opened struct {
		t    *activate.Target
		done func()
		err  error
	}
	ch := make(chan opened, 1)
	go func() {
		t, done, err := openTargetFor(true)
		ch <- opened{t, done, err}
	}()
	// The current system's manifest is read beside them too: the open
	// spends milliseconds waiting on fsyncs, and decoding the first
	// manifest is the dearest (encoding/json learns the types), so it no
	// longer waits for the evaluation to end. Store paths never change,
	// so reading before the activation lock is held is safe.
	cur := ""
	if t, err := newTarget(); err == nil {
		cur = t.ProfileSystem()
	}
	curRead := make(chan map[storepath.Path]*manifest.Manifest, 1)
	go func() { curRead <- readManifests(cur) }()
	cached, sys, err := evaluateForSwitch(args)
	if err != nil {
		// Not waiting for the open: it may wait for a lock, and the
		// store recovers from an open cut short like from any crash.
		return err
	}
	var out string
	if cached != nil {
		out = cached.Out
	} else {
		out = sys.Drv.Out()
	}
	// The core that evaluated is free while the open finishes: read the
	// new system's manifest meanwhile.
	var read map[storepath.Path]*manifest.Manifest
	if out != cur {
		read = readManifests(out)
	}
	o := <-ch
	if o.err != nil {
		return o.err
	}
	t := o.t
	defer o.done()
	for _, ms := range []map[storepath.Path]*manifest.Manifest{read, <-curRead} {
		for p, m := range ms {
			t.AdoptManifest(p, m)
		}
	}
	var p storepath.Path
	var hash string
	if cached != nil {
		var ok bool
		if p, ok, err = deploy.Held(t.Store, cached.Out); err != nil {
			return err
		}
		// A cached system collected since is evaluated again, for the
		// derivations to build.
		if ok {
			hash = cached.ID
			for _, m := range cached.Prints {
				os.Stderr.WriteString(m + "\n")
			}
		} else if sys, err = evaluate(args); err != nil {
			return err
		}
	}
	if sys != nil {
		if p, hash, err = realiseConfig(t, sys); err != nil {
			return err
		}
	}
	prev := t.ActiveSystem()
	res, err := t.Switch(p, switchOptions(mode, hash))
	if err != nil {
		return err
	}
	printResult(t, res, prev)
	return nil
}

// evaluateForSwitch gives what the config evaluates to: from the
// evaluation cache when every file it read is unchanged (see
// lang.LookupEval; the caller prints what the evaluation printed once it
// uses the entry), else by evaluating it (sys, cached nil), which
// refreshes the cache.
func evaluateForSwitch(args []string) (*lang.CachedEval, *lang.System, error) {
	cfg := configPath(args)
	opts, err := evalOptions()
	if err != nil {
		return nil, nil, err
	}
	if !switchNoEvalCache {
		if c, ok := lang.LookupEval(cfg, opts); ok {
			return c, nil, nil
		}
	}
	var prints []string
	show := opts.Print
	opts.Print = func(msg string) {
		prints = append(prints, msg)
		show(msg)
	}
	opts.Inputs = &lang.Inputs{}
	sys, err := lang.Eval(cfg, opts)
	if err != nil {
		reportEvalError(os.Stderr, err)
		return nil, nil, exitError{1}
	}
	lang.SaveEval(cfg, opts, sys, prints)
	return nil, sys, nil
}

// switchNoEvalCache is --no-eval-cache of switch, boot and test.
var switchNoEvalCache bool

func addEvalCacheFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&switchNoEvalCache, "no-eval-cache", false, "evaluate the config even when no file it reads changed since it was last evaluated")
}

// switchToGeneration switches to a recorded generation.
func switchToGeneration(n uint64, mode activate.Mode) error {
	return switchToGenerationOf(func(*activate.Target) (uint64, error) { return n, nil }, mode)
}

// switchToGenerationOf switches to the generation pick names, picked
// with the target open (one store open per command: it is most of a
// rollback's cost).
func switchToGenerationOf(pick func(*activate.Target) (uint64, error), mode activate.Mode) error {
	t, done, err := openTarget()
	if err != nil {
		return err
	}
	defer done()
	n, err := pick(t)
	if err != nil {
		return err
	}
	prev := t.ActiveSystem()
	res, err := t.SwitchTo(n, switchOptions(mode, ""))
	if err != nil {
		return err
	}
	printResult(t, res, prev)
	return nil
}

// readManifests reads the manifests of the system outputs at the given
// logical paths that are in the store already.
func readManifests(logicals ...string) map[storepath.Path]*manifest.Manifest {
	dir, err := physicalStoreDir()
	if err != nil {
		return nil
	}
	return activate.ReadManifests(dir, storeDir(), logicals...)
}
