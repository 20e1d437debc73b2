package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/realise"
)

// Exit statuses, as Nix's 100-104 tell a script what failed without
// reading the message. They are written in nexis(1).
const (
	exitFailure      = 1   // anything else
	exitUsage        = 2   // a flag, argument or command nexis does not take
	exitBuildFailed  = 100 // a derivation's build failed
	exitHashMismatch = 102 // a fixed-output derivation's content is not what its hash names
	exitCheckDiffers = 104 // build --check: a rebuild differs from the store's copy
	exitInterrupted  = 130 // Ctrl-C or SIGTERM stopped the work
)

// exitCode is the status err ends nexis with.
func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, realise.ErrHashMismatch):
		return exitHashMismatch
	case errors.Is(err, realise.ErrFailed):
		return exitBuildFailed
	case errors.Is(err, deploy.ErrInterrupted):
		return exitInterrupted
	// cobra's own errors have no type: an unknown verb is one.
	case strings.HasPrefix(err.Error(), "unknown command "):
		return exitUsage
	}
	return exitFailure
}

// usageError is a command line nexis does not take.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usageArgs makes an argument error of a verb a usageError.
func usageArgs(args cobra.PositionalArgs) cobra.PositionalArgs {
	if args == nil {
		return nil
	}
	return func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
