package activate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
)

// State is what activation remembers of the live system, in
// <state>/activation.json: which entries it manages (so it removes what a
// generation drops, and never touches what it did not create) and which
// services it started from which files.
type State struct {
	Version int `json:"version"`
	// Status is "activating" from the moment an activation starts
	// changing the root until it finished: a crash leaves it so, and
	// `nexis activate --repair` runs the recorded generation again.
	Status string `json:"status"`
	// Generation is the generation being or last activated (0 for
	// `nexis test` of an unrecorded system).
	Generation uint64 `json:"generation"`
	// System is the logical path of that system output.
	System string `json:"system"`
	// Etc are the /etc entries (relative paths) activation made: links
	// through /etc/static, or copies.
	Etc []string `json:"etc"`
	// Files are the absolute paths of manifest files placed.
	Files []string `json:"files"`
	// Users and Groups activation declared; Locked are users a later
	// generation dropped, kept with a locked password.
	Users  []string `json:"users"`
	Groups []string `json:"groups"`
	Locked []string `json:"locked"`
	// Services maps each service's name to the store file it was
	// started from.
	Services map[string]string `json:"services"`
	// Dirs are directories activation created under /etc for its links,
	// removed again when empty.
	Dirs []string `json:"dirs"`
	// SELinux maps the policy modules semodule installed to their CIL
	// store files, and SELinuxPaths are the paths they label; on a
	// kernel without SELinux both stay as they were, so the next
	// activation on one installs the modules.
	SELinux      map[string]string `json:"selinux,omitempty"`
	SELinuxPaths []string          `json:"selinux_paths,omitempty"`
}

const (
	statusActivating = "activating"
	statusActive     = "active"
)

func (t *Target) statePath() string { return t.inState("activation.json") }

// LoadState reads the record of the last activation (an empty one on a
// root nexis never activated).
func (t *Target) LoadState() (*State, error) {
	st := &State{Version: 1, Services: map[string]string{}}
	if err := t.readStateFile(t.statePath(), "activation state", st); err != nil {
		return nil, err
	}
	if st.Services == nil {
		st.Services = map[string]string{}
	}
	return st, nil
}

// readStateFile decodes the JSON state file p into v, which keeps its
// contents when p does not exist yet; what names the file in errors.
func (t *Target) readStateFile(p, what string, v any) error {
	b, err := t.Root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: %w", what, p, err)
	}
	return nil
}

func (t *Target) saveState(st *State) error {
	for _, l := range [][]string{st.Etc, st.Files, st.Users, st.Groups, st.Locked, st.Dirs} {
		sort.Strings(l)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := t.Root.MkdirAll(t.StateDir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return t.Root.WriteFile(t.statePath(), append(b, '\n'), 0o644, nil)
}

// union returns the sorted union of string sets.
func union(ls ...[]string) []string {
	m := map[string]bool{}
	for _, l := range ls {
		for _, s := range l {
			m[s] = true
		}
	}
	return keys(m)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func setOf(l []string) map[string]bool {
	m := make(map[string]bool, len(l))
	for _, s := range l {
		m[s] = true
	}
	return m
}

// nextState is the record an activation of p leaves: the /etc entries
// and files nexis manages then, the users and groups it declared (and
// the users it locked), the services with their sources.
func nextState(p *Plan, st *State, newEtc, newFiles []string) *State {
	m, acc := p.System.Manifest, p.Accounts
	ns := &State{Version: 1, Status: statusActive, Generation: p.Options.Generation, System: p.System.Logical, Services: map[string]string{}}
	ns.Etc = union(newEtc)
	ns.Files = union(newFiles)
	for _, u := range m.Users {
		ns.Users = append(ns.Users, u.Name)
	}
	declared := setOf(ns.Users)
	for _, u := range union(st.Users, st.Locked) {
		if !declared[u] {
			ns.Locked = append(ns.Locked, u)
		}
	}
	for _, g := range m.Groups {
		ns.Groups = append(ns.Groups, g.Name)
	}
	removedG := setOf(acc.RemoveGroups)
	for _, g := range st.Groups {
		if !removedG[g] && !contains(ns.Groups, g) {
			ns.Groups = append(ns.Groups, g) // still some account's primary group
		}
	}
	for _, s := range m.Services {
		ns.Services[s.Name] = s.Source
	}
	ns.Dirs = st.Dirs
	ns.SELinux, ns.SELinuxPaths = st.SELinux, st.SELinuxPaths
	if op := p.SELinux; op != nil && op.Disabled == "" {
		ns.SELinux = map[string]string{}
		ns.SELinuxPaths = nil
		if m.SELinux.Mode != "disabled" {
			for _, mod := range m.SELinux.Modules {
				ns.SELinux[mod.Name] = mod.CIL
			}
			ns.SELinuxPaths = m.SELinux.ImmutablePaths
		}
	}
	return ns
}
