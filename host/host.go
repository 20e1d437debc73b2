// Package host is the system a command works on, as this machine
// reaches it: the root (--root), the store inside it at its logical
// directory (--store), and the state directory (--state). It opens them
// the ways commands need (the store for writing, read-only, or for
// queries of named paths; the root as an activation target), and says
// how this machine realises (Machine) and which builders and keys it
// uses. Every path of the target is resolved inside the root, as
// chroot(2) would (internal/durable): a link ROOT/store -> /elsewhere
// means ROOT/elsewhere.
package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// ErrEmptyRoot is a --root that names nothing.
var ErrEmptyRoot = errors.New("--root is empty: name the directory of the system to work on (--root / for this machine)")

// Host is the system at Root. The fields are the command line's; the
// root is opened once, at its first use.
type Host struct {
	// Root is where the system is mounted on this machine (/ for this
	// machine's own).
	Root string
	// Store is the logical store directory, written into store paths.
	Store string
	// State is the state directory as the target names it (profiles,
	// id maps, logs).
	State string
	// Dedup is how the store shares identical files when it writes
	// (store.ParseDedupMode).
	Dedup string
	// Version is this nexis's, recorded with every activation.
	Version string
	// Verbosity is how much realising says on stderr (-q, -v).
	Verbosity realise.Verbosity

	once sync.Once
	root *durable.Root
	err  error
}

// StoreDir is the logical store directory.
func (h *Host) StoreDir() string { return filepath.Clean(h.Store) }

// StateDir is the state directory as the target names it.
func (h *Host) StateDir() string { return filepath.Clean(h.State) }

// OpenRoot is the root, opened; a root that does not exist yet is made,
// as the store below it always was.
func (h *Host) OpenRoot() (*durable.Root, error) {
	h.once.Do(func() {
		if h.Root == "" {
			h.err = ErrEmptyRoot
			return
		}
		if err := os.MkdirAll(h.Root, 0o755); err != nil {
			h.err = fmt.Errorf("--root: %w", err)
			return
		}
		if h.root, h.err = durable.OpenRoot(h.Root); h.err != nil {
			h.err = fmt.Errorf("--root: %w", h.err)
		}
	})
	return h.root, h.err
}

// InRoot is where the target's path p is on this machine, resolved
// inside the root: for code that takes paths (the store, build logs).
func (h *Host) InRoot(p string) (string, error) {
	r, err := h.OpenRoot()
	if err != nil {
		return "", err
	}
	return r.Resolve(p)
}

// PhysicalStoreDir is where the store lives on this machine.
func (h *Host) PhysicalStoreDir() (string, error) { return h.InRoot(h.StoreDir()) }

// PhysicalStateDir is where nexis keeps its state on this machine.
func (h *Host) PhysicalStateDir() (string, error) { return h.InRoot(h.StateDir()) }

// SetVerbosity sets how much realising says (-v, -q; neither is the
// default).
func (h *Host) SetVerbosity(verbose, quiet bool) error {
	switch {
	case quiet && verbose:
		return errors.New("-v (--verbose) and -q (--quiet) contradict each other: give one")
	case quiet:
		h.Verbosity = realise.Quiet
	case verbose:
		h.Verbosity = realise.Verbose
	}
	return nil
}

// LogDir is where build logs are kept on this machine.
func (h *Host) LogDir() (string, error) {
	state, err := h.PhysicalStateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(state, "logs"), nil
}

// ConfigPath is the config named on the command line, or the system's
// (resolved inside the root; when the root cannot be opened, its plain
// path, which then fails to read like any missing config).
func (h *Host) ConfigPath(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	if p, err := h.InRoot("/etc/nexis/config.toml"); err == nil {
		return p
	}
	return filepath.Join(h.Root, "etc/nexis/config.toml")
}

// OpenStore opens the store for writing: it waits for another writer.
func (h *Host) OpenStore() (*store.Store, error) {
	mode, err := store.ParseDedupMode(h.Dedup)
	if err != nil {
		return nil, err
	}
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return nil, err
	}
	return store.Open(dir, store.Options{LogicalDir: h.StoreDir(), Dedup: mode})
}

// OpenStoreFor opens the store for writing when write is set, else for
// queries (OpenStoreRead).
func (h *Host) OpenStoreFor(write bool) (*store.Store, error) {
	if write {
		return h.OpenStore()
	}
	return h.OpenStoreRead()
}

// OpenStoreReadOnly opens the store without taking the lock.
func (h *Host) OpenStoreReadOnly() (*store.Store, error) {
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return nil, err
	}
	return store.Open(dir, store.Options{LogicalDir: h.StoreDir(), ReadOnly: true})
}

// OpenStoreRead opens the store for queries without taking the lock; a
// store nothing was added to yet says so.
func (h *Host) OpenStoreRead() (*store.Store, error) {
	s, err := h.OpenStoreReadOnly()
	if errors.Is(err, store.ErrNotInitialised) {
		return nil, fmt.Errorf("the store %s is empty: nothing was ever added to it", h.StoreDir())
	}
	return s, err
}

// OpenStorePaths opens the store for queries and parses args as valid
// store paths.
func (h *Host) OpenStorePaths(args []string) (*store.Store, []storepath.Path, error) {
	s, err := h.OpenStoreRead()
	if err != nil {
		return nil, nil, err
	}
	ps, err := ValidPaths(s, args)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, ps, nil
}

// ValidPaths parses store path arguments and checks they are valid.
func ValidPaths(s *store.Store, args []string) ([]storepath.Path, error) {
	var out []storepath.Path
	for _, a := range args {
		p, _, err := s.ParsePath(a)
		if err != nil {
			return nil, err
		}
		ok, err := s.IsValid(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s is not a valid path in the store", s.Logical(p))
		}
		out = append(out, p)
	}
	return out, nil
}

// OpenManifest opens the store for queries and reads the manifest of
// the store path arg names; rest is what arg names inside it.
func (h *Host) OpenManifest(arg string) (*store.Store, storepath.Path, string, []treehash.File, error) {
	s, err := h.OpenStoreRead()
	if err != nil {
		return nil, storepath.Path{}, "", nil, err
	}
	p, rest, err := s.ParsePath(arg)
	var files []treehash.File
	if err == nil {
		files, err = s.Manifest(p)
	}
	if err != nil {
		s.Close()
		return nil, p, "", nil, err
	}
	return s, p, rest, files, nil
}

// TrustedKeys are the keys this machine trusts: <root>/etc/nexis/trusted-keys
// and extra lines (--trusted-key).
func (h *Host) TrustedKeys(extra ...string) (*sign.Trusted, error) {
	file, err := h.InRoot(sign.DefaultTrustedFile)
	if err != nil {
		return nil, err
	}
	return sign.LoadTrusted(file, extra...)
}

// WriteLog writes the kept build log arg names (FindLog) to w.
func (h *Host) WriteLog(arg string, w io.Writer) error {
	p, err := h.FindLog(arg)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("reading log: %w", err)
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// FindLog finds the kept build log arg names (realise.FindLog): a
// store path, anything inside one, an out-link or a physical path to
// one, or a package's name.
func (h *Host) FindLog(arg string) (string, error) {
	physical, err := h.PhysicalStoreDir()
	if err != nil {
		return "", err
	}
	logs, err := h.LogDir()
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(arg); err == nil && strings.HasPrefix(resolved, physical+"/") {
		arg = h.StoreDir() + strings.TrimPrefix(resolved, physical)
	}
	return realise.FindLog(logs, h.StoreDir(), arg)
}
