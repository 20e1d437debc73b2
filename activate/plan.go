package activate

import (
	"fmt"
	"strings"

	"github.com/nexisos/nexis/manifest"
)

// Options tune planning and execution.
type Options struct {
	// Live controls running services through dinitctl (stop, reload,
	// start). Off, only the service files change: what a mounted target
	// or `nexis boot` wants.
	Live bool
	// Mount mounts the generation's [[filesystems]] that are not
	// mounted yet where that hides nothing (mount.go): the running
	// system's root, never a mounted target or a scratch root.
	Mount bool
	// Force replaces /etc entries and files nexis did not create.
	Force bool
	// Hooks runs the generation's pre_switch and post_switch hooks.
	Hooks bool
	// Generation is the number being activated (0: an unrecorded
	// system, `nexis test` of a fresh build).
	Generation uint64
}

// Conflict is an entry nexis did not create and leaves alone.
type Conflict struct {
	Path   string `json:"path"`
	Origin string `json:"origin"`
	Reason string `json:"reason"`
}

// Plan is everything an activation changes, made by comparing the root
// with the generation. Execute does exactly this.
type Plan struct {
	System           *System  `json:"-"`
	Generation       uint64   `json:"generation"`
	Options          Options  `json:"-"`
	Prev             *State   `json:"-"`
	PreviousSystem   string   `json:"previous_system"`
	NewSystem        string   `json:"system"`
	EtcStaticChanges bool     `json:"etc_static_changes"` // /etc/static moves to the generation
	EtcAdd           []string `json:"etc_add"`            // new links through /etc/static
	EtcCopy          []string `json:"etc_copy"`           // copies with a mode, new or changed
	EtcRemove        []string `json:"etc_remove"`         // entries the generation dropped
	// EtcChanged are existing links whose file changes with the swap of
	// /etc/static (for the summary; nothing is done to them).
	EtcChanged  []string   `json:"etc_changed"`
	Localtime   string     `json:"localtime,omitempty"` // new target of /etc/localtime
	Conflicts   []Conflict `json:"conflicts"`
	Files       []FileOp   `json:"files"`
	FilesRemove []string   `json:"files_remove"`
	Accounts    *Accounts  `json:"-"`
	// AccountFiles are the account files whose content changes.
	AccountFiles   []string    `json:"account_files"`
	Homes          []string    `json:"homes"`
	RuntimeDirs    []string    `json:"runtime_dirs"`
	ServicesBefore []ServiceOp `json:"services_before"`
	ServicesAfter  []ServiceOp `json:"services_after"`
	// Service names by what happens to them, for the summary.
	ServicesStart   []string `json:"services_start"`
	ServicesRestart []string `json:"services_restart"`
	ServicesStop    []string `json:"services_stop"`
	ServicesChanged []string `json:"services_changed"` // files changed (restarted when live)
	CurrentSystem   bool     `json:"current_system"`   // /run/current-system moves
	// Mounts are the declared file systems not mounted yet (with
	// Options.Mount only); each is mounted if that hides nothing.
	Mounts []manifest.Filesystem `json:"mounts"`
	// SELinux is what semodule installs and removes (nil: nothing).
	SELinux *SELinuxOp `json:"selinux,omitempty"`

	newState *State
	etcWant  map[string]etcWant
}

// Empty reports whether the plan changes nothing on disk.
func (p *Plan) Empty() bool {
	return !p.EtcStaticChanges && len(p.EtcAdd)+len(p.EtcCopy)+len(p.EtcRemove)+len(p.Files)+len(p.FilesRemove)+
		len(p.AccountFiles)+len(p.Homes)+len(p.RuntimeDirs)+len(p.ServicesBefore)+len(p.ServicesAfter)+len(p.Mounts) == 0 &&
		p.Localtime == "" && !p.CurrentSystem && p.SELinux == nil && !p.stateChanges()
}

func (p *Plan) stateChanges() bool {
	o, n := p.Prev, p.newState
	return o.Status != statusActive || o.Generation != n.Generation || o.System != n.System ||
		strings.Join(o.Etc, "\x00") != strings.Join(n.Etc, "\x00") ||
		strings.Join(o.Files, "\x00") != strings.Join(n.Files, "\x00") ||
		strings.Join(o.Users, "\x00") != strings.Join(n.Users, "\x00") ||
		strings.Join(o.Groups, "\x00") != strings.Join(n.Groups, "\x00") ||
		strings.Join(o.Locked, "\x00") != strings.Join(n.Locked, "\x00") ||
		fmt.Sprint(o.Services) != fmt.Sprint(n.Services) || fmt.Sprint(o.SELinux) != fmt.Sprint(n.SELinux)
}

// Plan compares the root with sys and lists what activating it changes,
// concern by concern: /etc (etc.go), accounts and homes (accounts.go),
// runtime directories and files (files.go), services (services.go),
// /run/current-system, file systems to mount (mount.go), and the record
// the activation leaves (state.go).
func (t *Target) Plan(sys *System, opts Options) (*Plan, error) {
	if err := t.guard(sys.Manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", sys.Logical, err)
	}
	if err := t.checkLogPaths(sys.Manifest); err != nil {
		return nil, err
	}
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	p := &Plan{System: sys, Generation: opts.Generation, Options: opts, Prev: st, PreviousSystem: st.System, NewSystem: sys.Logical}
	newEtc, err := t.planEtc(p, st, opts)
	if err != nil {
		return nil, err
	}
	acc, err := t.planAccounts(sys.Manifest, st)
	if err != nil {
		return nil, err
	}
	p.Accounts = acc
	t.planAccountFiles(p, acc)
	t.planRuntimeDirs(p)
	newFiles, err := t.planFiles(p, st, acc, opts)
	if err != nil {
		return nil, err
	}
	p.planServices(st, opts)
	if err := t.planMounts(p); err != nil {
		return nil, err
	}
	planSELinux(p, st)
	if cur, err := t.Root.Readlink("/run/current-system"); err != nil || cur != sys.Logical {
		p.CurrentSystem = true
	}
	p.newState = nextState(p, st, newEtc, newFiles)
	return p, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// checkLogPaths refuses a [[log_rotation]] path that is a directory on
// the machine: logrotate rotates files, and would report an error on
// every run while the directory's logs grow. Evaluation cannot know what
// a path is on the machine; a path ending in / it refuses itself.
func (t *Target) checkLogPaths(m *manifest.Manifest) error {
	for i, p := range m.LogRotation {
		if strings.ContainsAny(p, "*?[") {
			continue
		}
		if fi, err := t.Root.Stat(p); err == nil && fi.IsDir() {
			return fmt.Errorf("log_rotation[%d].path: %s is a directory on this machine, and logrotate rotates files: name its files with a glob, such as path = \"%s/*.log\"", i, p, p)
		}
	}
	return nil
}
