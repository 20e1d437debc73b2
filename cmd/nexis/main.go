// Command nexis evaluates, builds, stores and activates NexisOS systems.
//
// Every subcommand lives in a file of its own and registers itself with
// the root command from init; the files stay thin: flags, one call into a
// package, printing.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store/storepath"
)

// version is set at link time by the Makefile (-X main.version=...).
var version = "dev"

// Global locations. The logical store directory is the one written into
// store paths; the physical one is where it lives on this machine, which
// differs when --root points at a mounted target or a test directory.
var (
	flagRoot  string
	flagStore string
	flagState string
)

var rootCmd = &cobra.Command{
	Use:           "nexis",
	Short:         "Evaluate, build, store and activate NexisOS systems",
	Version:       version,
	SilenceUsage:  true,
	SilenceErrors: true,
	PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
		if flagRoot == "" {
			return errEmptyRoot
		}
		startUp(cmd)
		return nil
	},
}

// startUp is what every command does first, before it touches the
// store: finish the work a crash interrupted (a garbage collection).
func startUp(cmd *cobra.Command) {
	finishInterruptedGC(cmd)
}

var errEmptyRoot = errors.New("--root is empty: name the directory of the system to work on (--root / for this machine)")

func init() {
	pf := rootCmd.PersistentFlags()
	pf.StringVar(&flagRoot, "root", envOr("NEXIS_ROOT", "/"), "operate on the system mounted at `DIR` (store, state and activation all live under it)")
	pf.StringVar(&flagStore, "store", envOr("NEXIS_STORE", storepath.DefaultDir), "logical store directory `DIR` written into store paths")
	pf.StringVar(&flagState, "state", envOr("NEXIS_STATE", "/var/lib/nexis"), "state directory `DIR` (profiles, id maps, logs), under --root")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// storeDir is the logical store directory.
func storeDir() string { return filepath.Clean(flagStore) }

// stateDir is the state directory as the target names it.
func stateDir() string { return filepath.Clean(flagState) }

// The root (--root) is opened once; every path of the target is
// resolved inside it, as chroot(2) would (internal/durable): a link
// ROOT/store -> /elsewhere means ROOT/elsewhere.
var theRoot struct {
	once sync.Once
	r    *durable.Root
	err  error
}

// targetRoot is --root, opened; a root that does not exist yet is made,
// as the store below it always was.
func targetRoot() (*durable.Root, error) {
	theRoot.once.Do(func() {
		if flagRoot == "" {
			theRoot.err = errEmptyRoot
			return
		}
		if err := os.MkdirAll(flagRoot, 0o755); err != nil {
			theRoot.err = fmt.Errorf("--root: %w", err)
			return
		}
		if theRoot.r, theRoot.err = durable.OpenRoot(flagRoot); theRoot.err != nil {
			theRoot.err = fmt.Errorf("--root: %w", theRoot.err)
		}
	})
	return theRoot.r, theRoot.err
}

// inRoot is where the target's path p is on this machine, resolved
// inside the root: for code that takes paths (the store, build logs).
func inRoot(p string) (string, error) {
	r, err := targetRoot()
	if err != nil {
		return "", err
	}
	return r.Resolve(p)
}

// physicalStoreDir is where the store lives on this machine.
func physicalStoreDir() (string, error) { return inRoot(storeDir()) }

// physicalStateDir is where nexis keeps its state on this machine.
func physicalStateDir() (string, error) { return inRoot(stateDir()) }

// exitError carries an exit status for errors that were already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run())
}

func run() int {
	// NEXIS_CPUPROFILE=FILE writes a CPU profile of the whole command:
	// the switch and store benchmarks are whole processes, and this is how
	// their time is taken apart (go tool pprof bin/nexis FILE).
	if f := os.Getenv("NEXIS_CPUPROFILE"); f != "" {
		stop, err := startCPUProfile(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "nexis: %v\n", err)
			return 1
		}
		defer stop()
	}
	err := rootCmd.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(os.Stderr, "nexis: %v\n", err)
	return 1
}

func startCPUProfile(name string) (stop func(), err error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("NEXIS_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("NEXIS_CPUPROFILE: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
