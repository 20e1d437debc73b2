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
