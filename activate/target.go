// Package activate turns a realised system output into the running
// system: numbered generations and their profile links, /etc, users and
// groups, dinit services, hooks, the GRUB menu, retention and rollback.
//
// It reads the system output (manifest.json, etc/) and never evaluates.
// Every path it reads or writes is a path of the target system resolved
// inside Target.Root (--root) by the kernel, as chroot(2) would resolve
// it (internal/durable): a link in the target to /x means <root>/x, so a
// planted link (ROOT/etc -> /somewhere) can redirect nothing outside the
// root, and no write ever follows a link at the entry it replaces. The
// store paths it links to and reads are logical (/store/...), resolved
// inside the root the same way.
//
// What a generation may touch is checked before anything changes
// (guard.go): no manifest entry may claim what nexis manages itself or
// what the system needs (passwd, shadow, /etc/static, the state
// directory, the store, /etc itself...), and account fields are checked
// against what passwd, group and shadow can hold.
//
// Work is planned, then executed (restic's PlanPrune/Execute):
// Target.Plan compares what is on disk with what the generation says and
// lists every change; dry-activate prints the plan; Execute does exactly
// the plan. Because the plan is made from the disk and not from the
// previous generation alone, running it again after a crash (kill -9 at
// any point) finishes the job: `nexis activate --repair`.
package activate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Profile is the name of the system profile.
const Profile = "system"

// Target is one machine to activate: a root directory, its store (open
// for writing when something changes) and its state directory.
type Target struct {
	// Root is the directory the system lives in ("/" on a running
	// machine): every path of the target is resolved inside it.
	Root *durable.Root
	// Store is the root's store, at its logical directory inside Root.
	Store *store.Store
	// StateDir is the state directory (profiles, id map, the record of
	// the last activation) as the target names it ("/var/lib/nexis").
	StateDir string
	// Version is this nexis's version, recorded in new generations.
	Version string
	// ReadOnly says Store was opened for reading: a writable open costs
	// more than a whole no-op switch (the database's memtables), so
	// commands start read-only and Reopen gives the writable store the
	// moment something in the database must change.
	ReadOnly bool
	Reopen   func() (*store.Store, error)

	systems map[storepath.Path]*System            // LoadSystem's cache: outputs are immutable
	read    map[storepath.Path]*manifest.Manifest // AdoptManifest's, not yet checked valid
}

// writable makes Store writable, reopening it if it was opened
// read-only.
func (t *Target) writable() error {
	if !t.ReadOnly {
		return nil
	}
	if t.Reopen == nil {
		return fmt.Errorf("the store was opened read-only")
	}
	st, err := t.Reopen()
	if err != nil {
		return err
	}
	t.Store.Close()
	t.Store, t.ReadOnly = st, false
	return nil
}

// Writable is writable for commands that know they will write.
func (t *Target) Writable() error { return t.writable() }

// inState is the path of name in the state directory.
func (t *Target) inState(name string) string { return path.Join(t.StateDir, name) }

// ProfilesDir holds system-N-link and system (a path of the target).
func (t *Target) ProfilesDir() string { return t.inState("profiles") }

func (t *Target) genLink(n uint64) string {
	return path.Join(t.ProfilesDir(), fmt.Sprintf("%s-%d-link", Profile, n))
}

// System is one realised system output.
type System struct {
	Path     storepath.Path
	Logical  string // its logical path: the target of the links, and where it is inside the root
	Manifest *manifest.Manifest
}

// LoadSystem reads the manifest of a valid system output.
func (t *Target) LoadSystem(p storepath.Path) (*System, error) {
	if sys, ok := t.systems[p]; ok {
		return sys, nil
	}
	ok, err := t.Store.IsValid(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s is not a valid store path: realise it first (nexis build)", t.Store.Logical(p))
	}
	logical := t.Store.Logical(p)
	m := t.read[p]
	if m == nil {
		f, err := t.Root.Open(path.Join(logical, "manifest.json"))
		if err != nil {
			return nil, fmt.Errorf("%s: not a system output: %w", logical, err)
		}
		m, err = manifest.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", logical, err)
		}
	}
	if err := t.guard(m); err != nil {
		return nil, fmt.Errorf("%s: %w", logical, err)
	}
	sys := &System{Path: p, Logical: logical, Manifest: m}
	if t.systems == nil {
		t.systems = map[storepath.Path]*System{}
	}
	t.systems[p] = sys
	return sys, nil
}

// ReadManifest reads the manifest of the system output at physical path
// phys. It needs no store: a switch reads the manifests it will need
// while the store is still opening, then hands them to AdoptManifest.
func ReadManifest(phys string) (*manifest.Manifest, error) {
	f, err := os.Open(phys + "/manifest.json")
	if err != nil {
		return nil, fmt.Errorf("not a system output: %w", err)
	}
	defer f.Close()
	return manifest.Decode(f)
}

// AdoptManifest gives LoadSystem(p) the manifest m, read by ReadManifest
// from p's directory before the store was open; LoadSystem still checks
// that p is valid before it uses m.
func (t *Target) AdoptManifest(p storepath.Path, m *manifest.Manifest) {
	if t.read == nil {
		t.read = map[storepath.Path]*manifest.Manifest{}
	}
	t.read[p] = m
}

// storeFile checks that a manifest's source names a file in the store
// and returns it as a path of the target (the store is at its logical
// directory inside the root).
func (t *Target) storeFile(logical string) (string, error) {
	p, rest, err := storepath.Parse(t.Store.LogicalDir(), logical)
	if err != nil {
		return "", fmt.Errorf("%s: %w", logical, err)
	}
	return t.Store.Logical(p) + rest, nil
}

// Lock serialises every command that changes the target; it is held
// until the process exits or Unlock.
type Lock struct{ f *os.File }

// LockTarget takes the target's activation lock, waiting for another
// nexis that holds it.
func (t *Target) LockTarget() (*Lock, error) {
	if err := t.Root.MkdirAll(t.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("activation lock: %w", err)
	}
	f, err := t.Root.OpenFile(t.inState("activate.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("activation lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("activation lock: %w", err)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// Profiles.

// SetProfileLink makes system-N-link point at sys (logical).
func (t *Target) setGenLink(n uint64, logical string) error {
	if err := t.Root.MkdirAll(t.ProfilesDir(), 0o755); err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	if cur, err := t.Root.Readlink(t.genLink(n)); err == nil && cur == logical {
		return nil
	}
	return t.Root.Symlink(logical, t.genLink(n), nil)
}

// SetCurrent makes generation n the profile's current one by renaming a
// new system link over the old one.
func (t *Target) SetCurrent(n uint64) error {
	want := path.Base(t.genLink(n))
	link := path.Join(t.ProfilesDir(), Profile)
	if cur, err := t.Root.Readlink(link); err == nil && cur == want {
		return nil
	}
	if _, err := t.Root.Lstat(t.genLink(n)); err != nil {
		return fmt.Errorf("generation %d has no profile link: %w", n, err)
	}
	return t.Root.Symlink(want, link, nil)
}

// Current is the generation the profile points at (0, false when none).
func (t *Target) Current() (uint64, bool, error) {
	s, err := t.Root.Readlink(path.Join(t.ProfilesDir(), Profile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("profile: %w", err)
	}
	n, ok := parseGenLink(s)
	if !ok {
		return 0, false, fmt.Errorf("profile link %s points at %q, not a generation link", Profile, s)
	}
	return n, true, nil
}

func parseGenLink(s string) (uint64, bool) {
	s = path.Base(s)
	rest, ok := strings.CutPrefix(s, Profile+"-")
	if !ok {
		return 0, false
	}
	num, ok := strings.CutSuffix(rest, "-link")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil && n > 0
}

// parseLogical parses a logical store path (with an optional rest).
func parseLogical(t *Target, logical string) (storepath.Path, string, error) {
	return storepath.Parse(t.Store.LogicalDir(), logical)
}
