package main

import (
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/lang/repl"
)

func init() {
	cmd := command("repl [CONFIG]", cobra.MaximumNArgs(1), func(cmd *cobra.Command, args []string) error {
		s := &repl.Session{
			Load:  func() (*lang.System, error) { return evaluateQuiet(args) },
			Out:   cmd.OutOrStdout(),
			Err:   os.Stderr,
			Build: replBuild,
		}
		if err := s.Start(); err != nil {
			reportEvalError(os.Stderr, err)
			return exitError{1}
		}
		interactive := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
		return s.Run(os.Stdin, interactive, repl.HistoryFile())
	})
	addEvalFlags(cmd)
	register(rootCmd, cmd)
}

// replBuild is the repl's :b: realise one derivation in the store of
// --root with the config's caches and builders, as nexis build does
// (without an out-link: the repl is not a GC root).
func replBuild(sys *lang.System, d *builtins.Derivation) ([]string, error) {
	return newBuild(sys).Outputs(d)
}

// evaluateQuiet evaluates without printing errors: the caller reports.
func evaluateQuiet(args []string) (*lang.System, error) {
	opts, err := evalOptions()
	if err != nil {
		return nil, err
	}
	return lang.Eval(here.ConfigPath(args), opts)
}

// evalOptions are the evaluation options the command line sets.
func evalOptions() (lang.Options, error) {
	m, err := stdenv()
	if err != nil {
		return lang.Options{}, err
	}
	return lang.Options{
		StoreDir:  here.StoreDir(),
		System:    evalFlags.system,
		MaxSteps:  evalFlags.maxSteps,
		MaxDepth:  evalFlags.maxDepth,
		MaxMemory: evalFlags.maxMemory << 20,
		Print:     func(msg string) { os.Stderr.WriteString(msg + "\n") },
		Runaway:   runaway,
		Stdenv:    m.Spec(),
		// Packages unchanged since the last evaluation come from the
		// package cache; --no-eval-cache evaluates everything.
		Cache: !switchNoEvalCache,
	}, nil
}

// runaway ends nexis when one step of an evaluation ran past what the
// evaluation itself can stop (see lang.Options.Runaway): a message, and
// no Go stack trace.
func runaway(msg string) {
	os.Stderr.WriteString("error: " + msg + "\n")
	os.Exit(1)
}
