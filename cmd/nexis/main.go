// Command nexis evaluates, builds, stores and activates NexisOS systems.
//
// Every verb lives in a file of its own (a verb with many subcommands,
// like store, in a few, by concern) and registers itself with the root
// command from init, its help text read from help/<command path>.txt;
// the files stay thin: flags, one call into a package, printing.
package main

//go:generate go test -run TestReferenceDocs -update .

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/internal/profile"
	"github.com/nexisos/nexis/store/storepath"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

// here is the system the command works on (--root, --store, --state,
// --dedup). The logical store directory is the one written into store
// paths; the physical one is where it lives on this machine, which
// differs when --root points at a mounted target or a test directory.
var here = &host.Host{Version: version}

var rootCmd = describe(&cobra.Command{
	Use:           "nexis",
	Version:       version,
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
		// cobra's completion command runs before the completed command's
		// flags are parsed: start-up work there would act on the default
		// root ("/") and fix it for the completion that follows.
		if cmd.Name() == cobra.ShellCompRequestCmd || cmd.Name() == cobra.ShellCompNoDescRequestCmd {
			return nil
		}
		if here.Root == "" {
			return host.ErrEmptyRoot
		}
		if err := here.SetVerbosity(verbosity.verbose, verbosity.quiet); err != nil {
			return usageError{err}
		}
		running = cmd
		setHintContext(cmd, args)
		startUp(cmd)
		return nil
	},
})

// setHintContext makes the commands printed hints suggest carry what
// the user gave this one: --root, --store and --state when set on the
// command line (the environment still holds those set there), and the
// CONFIG argument.
func setHintContext(cmd *cobra.Command, args []string) {
	var global []string
	for _, name := range []string{"root", "store", "state"} {
		if f := cmd.Flag(name); f != nil && f.Changed {
			global = append(global, "--"+name, f.Value.String())
		}
	}
	hint.SetGlobal(global...)
	for i, w := range strings.Fields(cmd.Use)[1:] {
		if (w == "CONFIG" || w == "[CONFIG]") && i < len(args) {
			hint.SetConfig(args[i])
		}
	}
}

// startUp is what every command but the trash worker does first,
// before it touches the store: finish the work a crash interrupted (a
// garbage collection, see gc.Startup).
func startUp(cmd *cobra.Command) {
	if cmd.Name() == "trash-worker" {
		return
	}
	for _, err := range here.FinishInterruptedGC(gcOpts.Workers) {
		fmt.Fprintf(os.Stderr, "nexis: warning: %v\n", err)
	}
}

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&here.Root, "root", envOr("NEXIS_ROOT", "/"), "operate on the system mounted at `DIR` (store, state and activation all live under it)")
	pf.StringVar(&here.Store, "store", envOr("NEXIS_STORE", storepath.DefaultDir), "logical store directory `DIR` written into store paths")
	pf.StringVar(&here.State, "state", envOr("NEXIS_STATE", "/var/lib/nexis"), "state directory `DIR` (profiles, id maps, logs), under --root")
	pf.BoolVarP(&verbosity.verbose, "verbose", "v", false, "say more: every build's log lines as they run (as -L)")
	pf.BoolVarP(&verbosity.quiet, "quiet", "q", false, "say less: no progress, plan or notes on stderr, only failures, warnings and errors")
}

// verbosity is -v and -q, which here.Verbosity holds once parsed
// (host.SetVerbosity).
var verbosity struct{ verbose, quiet bool }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// running is the command that runs, once its flags are parsed.
var running *cobra.Command

// exitError carries an exit status for errors that were already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run())
}

func run() int {
	// NEXIS_CPUPROFILE=FILE writes a CPU profile of the whole command.
	stop, err := profile.StartFromEnv("NEXIS_CPUPROFILE")
	if err != nil {
		fmt.Fprintf(os.Stderr, "nexis: %v\n", err)
		return 1
	}
	defer stop()
	// Every command's flag errors are usage errors (commands ask their
	// parents for the function).
	rootCmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	registerCompletions(rootCmd)
	err = rootCmd.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(os.Stderr, "nexis: %v\n", err)
	return exitCode(err)
}

// interruptible is the context of work that stops cleanly on Ctrl-C or
// SIGTERM; a package calls it when that work starts.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
