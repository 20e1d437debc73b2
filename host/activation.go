package host

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/internal/gcpace"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/storepath"
)

// Activation is how the command line says to activate: --live (Live
// when LiveSet, else live when the root is /), --force, --no-hooks,
// --dinitctl, and the collector's workers for auto_cleanup.
type Activation struct {
	Live, LiveSet  bool
	Force, NoHooks bool
	Dinitctl       string
	GCWorkers      int
}

// SwitchOptions are the options of a switch in mode of the config
// configHash names ("" for none) on the host, as a says.
func (h *Host) SwitchOptions(a Activation, mode activate.Mode, configHash string) activate.SwitchOptions {
	running := filepath.Clean(h.Root) == "/"
	live := running
	if a.LiveSet {
		live = a.Live
	}
	var notes io.Writer // activation's own notes: hook output's stream, or none under -q
	if h.Verbosity <= realise.Quiet {
		notes = io.Discard
	}
	return activate.SwitchOptions{
		Notes: notes,
		// The running system's declared file systems are mounted by
		// its activation, --live=false (the image's boot) included.
		Options:    activate.Options{Live: live, Mount: running, Force: a.Force, Hooks: !a.NoHooks},
		Mode:       mode,
		ConfigHash: configHash,
		Out:        os.Stderr,
		Dinitctl:   a.Dinitctl,
		Cleanup:    gc.AutoCleanup(h.TrashLauncher(a.GCWorkers)),
	}
}

// OpenActivation is OpenTarget for a command that activates. A switch
// or rollback is a short process whose garbage is mostly the
// evaluation's: collecting late, then four times less often, saves
// about a tenth of its CPU (measured on examples/full), for a few MB
// more.
func (h *Host) OpenActivation(write bool) (*activate.Target, func(), error) {
	gcpace.Late(400)
	return h.OpenTarget(write)
}

// Reactivate activates the current generation again (nexis activate),
// or with repair finishes the activation a crash interrupted.
func (h *Host) Reactivate(t *activate.Target, o activate.SwitchOptions, repair bool) (*activate.Result, error) {
	if repair {
		return t.Repair(o)
	}
	cur, ok, err := t.Current()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no generation is current on %s: run %s", h.Root, hint.Command("switch"))
	}
	return t.SwitchTo(cur, o)
}

// SystemPath is the built system arg names, which must be in the
// store already (copied there by a --target-host switch).
func SystemPath(t *activate.Target, arg string) (storepath.Path, error) {
	p, rest, err := t.Store.ParsePath(arg)
	if err != nil {
		return p, err
	}
	if rest != "" {
		return p, fmt.Errorf("--system-path %s: want a store path, not a file inside one", arg)
	}
	if ok, err := t.Store.IsValid(p); err != nil {
		return p, err
	} else if !ok {
		return p, fmt.Errorf("%s is not in the store here: copy it first (nexis copy)", t.Store.Logical(p))
	}
	return p, nil
}
