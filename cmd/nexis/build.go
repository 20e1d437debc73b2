package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
)

var buildFlags struct {
	attr      string
	outLink   string
	noOutLink bool
	dryRun    bool
	printLogs bool
	configTar string
}

// buildTuning is what build's flags set of the build.
var buildTuning deploy.Tuning

func init() {
	cmd := command("build [CONFIG]", cobra.MaximumNArgs(1), runBuild)
	f := cmd.Flags()
	f.StringVarP(&buildFlags.attr, "attr", "A", "", "build package `ATTR` (a name or an expression) instead of the system")
	f.StringVarP(&buildFlags.outLink, "out-link", "o", "result", "make `PATH` a symlink to the output, registered as a GC root")
	f.BoolVar(&buildFlags.noOutLink, "no-out-link", false, "make no out-link")
	f.BoolVar(&buildFlags.dryRun, "dry-run", false, "list what would be fetched and built, and stop")
	f.IntVarP(&buildTuning.Jobs, "jobs", "j", runtime.NumCPU(), "run `N` builds at once")
	f.BoolVarP(&buildTuning.KeepGoing, "keep-going", "k", false, "keep building what does not depend on a failed build")
	f.BoolVarP(&buildFlags.printLogs, "print-build-logs", "L", false, "print the builds' logs as they run")
	f.DurationVar(&buildTuning.Timeout, "timeout", 0, "stop a build that runs longer than `DURATION` (0: no limit; a package's own timeout wins)")
	f.BoolVar(&buildTuning.Check, "check", false, "rebuild every valid derivation of the closure this machine builds and report whether each is bit-identical")
	f.BoolVar(&buildTuning.CheckRoots, "check-roots", false, "like --check, for the outputs named only")
	jsonFlag(cmd, "print the result as JSON")
	f.StringVar(&buildFlags.configTar, "config-tar", "", "read the config's directory as a tar from stdin and build the config `FILE` in it, with no out-link (what switch --build-host runs)")
	f.MarkHidden("config-tar")
	addEvalFlags(cmd)
	register(rootCmd, cmd)
}

func runBuild(cmd *cobra.Command, args []string) error {
	if buildFlags.configTar != "" {
		if len(args) > 0 {
			return errors.New("--config-tar takes no CONFIG: it names the config inside the tar on stdin")
		}
		cfg, cleanup, err := deploy.ReceiveBuildConfig(here, os.Stdin, buildFlags.configTar)
		if err != nil {
			return err
		}
		defer cleanup()
		args = []string{cfg}
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	target := sys.Drv // the system, or -A's package
	if buildFlags.attr != "" {
		if target, err = sys.Derivation(buildFlags.attr); err != nil {
			return fmt.Errorf("-A %w", err)
		}
	}
	if buildFlags.dryRun {
		return dryRun(target)
	}
	b := newBuild(sys)
	b.PrintLogs = buildFlags.printLogs
	b.Tuning = buildTuning
	// A --config-tar build runs for another machine, which takes the
	// output away: a link in the ssh login's directory would only pin it.
	link := buildFlags.outLink
	if buildFlags.noOutLink || buildTuning.Check || buildTuning.CheckRoots || buildFlags.configTar != "" {
		link = ""
	}
	built, err := b.Run(target, link, interruptible)
	if errors.Is(err, realise.ErrFailed) {
		return exitError{exitCode(err)} // the build's failure is reported
	} else if err != nil {
		return err
	}
	built.PrintChecks(os.Stderr)
	if err := show(built, nil); err != nil {
		return err
	}
	if built.Differs() {
		return exitError{exitCheckDiffers}
	}
	return nil
}

func dryRun(target *builtins.Derivation) error {
	plan, err := deploy.PlanBuild(here, target)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(plan.JSON())
	}
	plan.Print(os.Stdout, target)
	return nil
}

// settings are what building takes of the config: its
// [nexis.substituters] and [nexis.builders].
func settings(sys *lang.System) deploy.Settings {
	bs := sys.Config.Builders()
	specs := make([]pool.Spec, len(bs))
	for i, b := range bs {
		specs[i] = pool.Spec(b)
	}
	return deploy.Settings{Caches: realise.Caches(sys.Config.Substituters()), Builders: specs}
}

// newBuild is how a command builds the config here: --stdenv's
// tarballs, downloads shown on a terminal.
func newBuild(sys *lang.System) *deploy.Build {
	return &deploy.Build{Host: here, Settings: settings(sys), LocalFiles: stdenvFiles(), Downloads: newProgress("downloading").Transfer()}
}

// systemBuild is how a switch builds its system: the machine, the
// config's caches and builders, -j.
func systemBuild(sys *lang.System) deploy.Builder {
	b := newBuild(sys)
	b.Tuning.Jobs = actFlags.jobs
	return b.Builder()
}

// machine is how this machine realises, with --stdenv's tarballs.
func machine() (*realise.Machine, error) {
	return here.Machine(stdenvFiles(), newProgress("downloading").Transfer())
}
