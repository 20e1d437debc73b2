package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/host"
)

// act is how the command that runs activates (addActivateFlags).
var act host.Activation

var actFlags struct {
	jobs          int
	repair, check bool
}

// addActivateFlags adds the flags of every command that changes the root.
func addActivateFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&act.Live, "live", false, "control running services through dinitctl (default: true when --root is /; --live=false only writes their files)")
	f.BoolVar(&act.Force, "force", false, "replace /etc entries and files nexis did not create (default: leave them and report them)")
	f.BoolVar(&act.NoHooks, "no-hooks", false, "do not run the pre_switch and post_switch hooks")
	f.StringVar(&act.Dinitctl, "dinitctl", "dinitctl", "the dinit control `PROGRAM`")
}

func init() {
	cmd := command("activate", cobra.NoArgs, runActivate)
	cmd.Flags().BoolVar(&actFlags.repair, "repair", false, "finish the activation a crash interrupted")
	cmd.Flags().BoolVar(&actFlags.check, "check", false, "report how the root differs from the current generation, change nothing")
	jsonFlag(cmd, "with --check, print the differences as JSON")
	addActivateFlags(cmd)
	register(rootCmd, cmd)
}

func runActivate(cmd *cobra.Command, args []string) error {
	if actFlags.check {
		return runActivateCheck()
	}
	return here.WithTarget(func(t *activate.Target) error {
		res, err := here.Reactivate(t, switchOptions(activate.ModeSwitch, ""), actFlags.repair)
		if err != nil {
			return err
		}
		res.Print(os.Stdout, os.Stderr, t, nil)
		return nil
	})
}

func switchOptions(mode activate.Mode, configHash string) activate.SwitchOptions {
	act.LiveSet = running.Flags().Changed("live")
	act.GCWorkers = gcOpts.Workers
	return here.SwitchOptions(act, mode, configHash)
}

// runActivateCheck walks the root against the current generation.
func runActivateCheck() error {
	return here.WithTargetRead(func(t *activate.Target) error {
		d, err := t.CheckCurrent()
		if err != nil {
			return err
		}
		if asJSON {
			if err := printJSON(d); err != nil {
				return err
			}
		} else {
			d.Print(os.Stdout, os.Stderr)
		}
		if len(d.Problems) > 0 {
			return exitError{1}
		}
		return nil
	})
}
