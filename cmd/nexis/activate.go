package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store/gc"
)

// Flags shared by the commands that activate.
var actFlags struct {
	live     bool
	force    bool
	noHooks  bool
	dinitctl string
	jobs     int
	repair   bool
	check    bool
	json     bool
}

// liveSet records that --live was given (true or false) to the command
// that runs.
var liveSet bool

// addActivateFlags adds the flags of every command that changes the root.
func addActivateFlags(cmd *cobra.Command) {
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		liveSet = c.Flags().Changed("live")
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
	f := cmd.Flags()
	f.BoolVar(&actFlags.live, "live", false, "control running services through dinitctl (default: true when --root is /; --live=false only writes their files)")
	f.BoolVar(&actFlags.force, "force", false, "replace /etc entries and files nexis did not create (default: leave them and report them)")
	f.BoolVar(&actFlags.noHooks, "no-hooks", false, "do not run the pre_switch and post_switch hooks")
	f.StringVar(&actFlags.dinitctl, "dinitctl", "dinitctl", "the dinit control `PROGRAM`")
}

func init() {
	cmd := &cobra.Command{
		Use:  "activate",
		Args: cobra.NoArgs,
		RunE: runActivate,
	}
	cmd.Flags().BoolVar(&actFlags.repair, "repair", false, "finish the activation a crash interrupted")
	cmd.Flags().BoolVar(&actFlags.check, "check", false, "report how the root differs from the current generation, change nothing")
	cmd.Flags().BoolVar(&actFlags.json, "json", false, "with --check, print the differences as JSON")
	addActivateFlags(cmd)
	register(rootCmd, cmd)
}

func runActivate(cmd *cobra.Command, args []string) error {
	if actFlags.check {
		return runActivateCheck()
	}
	t, done, err := openTarget()
	if err != nil {
		return err
	}
	defer done()
	o := switchOptions(activate.ModeSwitch, "")
	var res *activate.Result
	if actFlags.repair {
		res, err = t.Repair(o)
	} else {
		cur, ok, cerr := t.Current()
		if cerr != nil {
			return cerr
		}
		if !ok {
			return fmt.Errorf("no generation is current on %s: run %s", here.Root, hint.Command("switch"))
		}
		res, err = t.SwitchTo(cur, o)
	}
	if err != nil {
		return err
	}
	res.Print(os.Stdout, os.Stderr, t, nil)
	return nil
}

// openTarget takes the root's activation lock and opens its store
// read-only; the target reopens it for writing when something in the
// database must change (most rollbacks and no-op switches never do).
// done releases both.
func openTarget() (*activate.Target, func(), error) { return openTargetFor(false) }

// openTargetFor is openTarget; with write the store is opened writable
// at once (a command that knows it will write saves the read-only open).
func openTargetFor(write bool) (*activate.Target, func(), error) {
	// A switch or rollback is a short process whose garbage is mostly
	// the evaluation's: collecting four times less often saves about a
	// tenth of its CPU (measured on examples/full), for a few MB more.
	debug.SetGCPercent(400)
	return here.OpenTarget(write)
}

func switchOptions(mode activate.Mode, configHash string) activate.SwitchOptions {
	running := filepath.Clean(here.Root) == "/"
	live := running
	if liveSet {
		live = actFlags.live
	}
	var notes io.Writer // activation's own notes: hook output's stream, or none under -q
	if here.Verbosity <= realise.Quiet {
		notes = io.Discard
	}
	return activate.SwitchOptions{
		Notes: notes,
		// The running system's declared file systems are mounted by
		// its activation, --live=false (the image's boot) included.
		Options:    activate.Options{Live: live, Mount: running, Force: actFlags.force, Hooks: !actFlags.noHooks},
		Mode:       mode,
		ConfigHash: configHash,
		Out:        os.Stderr,
		Dinitctl:   actFlags.dinitctl,
		Cleanup:    gc.AutoCleanup(trashLauncher()),
	}
}

// runActivateCheck walks the root against the current generation.
func runActivateCheck() error {
	t, done, err := here.OpenTargetRead()
	if err != nil {
		return err
	}
	defer done()
	d, err := t.CheckCurrent()
	if err != nil {
		return err
	}
	if actFlags.json {
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
}
