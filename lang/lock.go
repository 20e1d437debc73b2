package lang

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/nexisos/nexis/internal/durable"
)

// LockFile is the name of the lock file beside a config.
const LockFile = "nexis.lock"

// LockVersion is the format version this nexis writes and reads.
const LockVersion = 1

// Lock pins what evaluation may not look up itself: the release a
// `version = "latest"` package resolves to, and the hashes of its source
// and prebuilt archive. `nexis lock` and `nexis update` write it;
// evaluation only reads it.
type Lock struct {
	Version  int                       `toml:"version"`
	Packages map[string]*LockedPackage `toml:"packages"`
}

// LockedPackage is one pinned package.
type LockedPackage struct {
	Version      string `toml:"version" json:"version"`                                 // e.g. "9.1.0"
	Tag          string `toml:"tag,omitempty" json:"tag,omitempty"`                     // e.g. "v9.1.0"
	Rev          string `toml:"rev,omitempty" json:"rev,omitempty"`                     // commit of Tag, for git sources
	SourceHash   string `toml:"source_hash,omitempty" json:"source_hash,omitempty"`     // "blake3:…" or "sha256:…"
	PrebuiltURL  string `toml:"prebuilt_url,omitempty" json:"prebuilt_url,omitempty"`   // the template, filled in
	PrebuiltHash string `toml:"prebuilt_hash,omitempty" json:"prebuilt_hash,omitempty"` // "sha256:…"
}

// LoadLock reads a lock file; a missing file is an empty lock.
func LoadLock(path string) (*Lock, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	dir, err := openConfigDir(filepath.Dir(abs), nil)
	if err != nil {
		return nil, err
	}
	defer dir.close()
	return loadLock(dir, filepath.Base(abs))
}

// loadLock reads the lock file name inside dir.
func loadLock(dir *configDir, name string) (*Lock, error) {
	l := &Lock{Version: LockVersion, Packages: map[string]*LockedPackage{}}
	src, err := dir.readFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	if err := checkNesting(name, src, DefaultMaxDepth); err != nil {
		return nil, fmt.Errorf("%w (regenerate it with `nexis lock`)", err)
	}
	if _, err := toml.Decode(string(src), l); err != nil {
		return nil, fmt.Errorf("%s: %w (regenerate it with `nexis lock`)", LockFile, err)
	}
	if l.Version > LockVersion {
		return nil, fmt.Errorf("%s has format version %d, this nexis reads up to %d: upgrade nexis", LockFile, l.Version, LockVersion)
	}
	if l.Packages == nil {
		l.Packages = map[string]*LockedPackage{}
	}
	return l, nil
}

// WriteLock writes l to path atomically (internal/durable), so that a
// crash leaves the old lock or the new one, never half of one. Packages are written sorted by name,
// so the same lock is the same bytes.
func WriteLock(path string, l *Lock) error {
	out := *l
	out.Version = LockVersion
	var buf bytes.Buffer
	buf.WriteString("# Written by `nexis lock` and `nexis update`: what version = \"latest\"\n# resolved to, and the hashes of sources and prebuilt archives.\n\n")
	if err := toml.NewEncoder(&buf).Encode(&out); err != nil {
		return fmt.Errorf("encoding %s: %w", LockFile, err)
	}
	if err := durable.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", LockFile, err)
	}
	return nil
}

// PackageEntry is a [[packages]] entry as the lock rule reads it.
type PackageEntry struct {
	Index                                                            int // its position in [[packages]]
	Name, Version, Source, Hash, Rev, Module, Prebuilt, PrebuiltHash string
	FallbackToSource                                                 bool
}

// Packages are the config's [[packages]] entries, in order.
func (c *Config) Packages() []PackageEntry {
	raw, _ := c.data["packages"].([]any)
	out := make([]PackageEntry, 0, len(raw))
	for i, r := range raw {
		e, _ := r.(map[string]any)
		out = append(out, packageEntry(i, e))
	}
	return out
}

func packageEntry(i int, e map[string]any) PackageEntry {
	s := func(k string) string {
		v, _ := e[k].(string)
		return v
	}
	fallback, _ := e["fallback_to_source"].(bool)
	return PackageEntry{
		Index: i, Name: s("name"), Version: s("version"), Source: s("source"), Hash: s("hash"), Rev: s("rev"),
		Module: s("module"), Prebuilt: s("prebuilt"), PrebuiltHash: s("prebuilt_hash"), FallbackToSource: fallback,
	}
}

// The lock rule: what a [[packages]] entry takes from nexis.lock. It is
// written here once; the resolver asks NeedsLock what to pin, and the
// stdlib's package() is given the Pin, never the lock itself.

// Fetched reports whether the entry's source is downloaded (a URL)
// rather than a file beside the config.
func (e PackageEntry) Fetched() bool { return strings.Contains(e.Source, "://") }

// Git reports whether the entry's source is a git repository: a URL
// ending in .git, or one pinned to a commit, by the entry or by its lock
// entry l (nil when there is none).
func (e PackageEntry) Git(l *LockedPackage) bool {
	return e.Fetched() && (strings.HasSuffix(e.Source, ".git") || e.Rev != "" || (l != nil && l.Rev != ""))
}

// NeedsLock reports whether evaluating the entry takes anything from the
// lock: the release "latest" names, the commit of a git source, or a
// hash the entry leaves out. Packages made by a user module pin their
// own sources.
func (e PackageEntry) NeedsLock() bool {
	switch {
	case e.Module != "":
		return false
	case e.Version == "latest":
		return true
	case e.Git(nil) && (e.Rev == "" || e.Hash == ""):
		return true
	case e.Fetched() && e.Hash == "":
		return true
	case e.Prebuilt != "" && e.PrebuiltHash == "":
		return true
	}
	return false
}

// Pin is what evaluation uses for one entry: the entry's own values,
// completed by its lock entry.
type Pin struct {
	Locked       bool   // the lock has an entry for the package
	Version, Tag string // "latest" resolved when locked; Tag is what {tag} fills in
	Git          bool
	Rev          string
	SourceHash   string
	PrebuiltURL  string // the prebuilt template filled in for the target system
	PrebuiltHash string
}

// Pin completes the entry with its lock entry l (nil when the lock has
// none) for the target system.
func (e PackageEntry) Pin(l *LockedPackage, system string) Pin {
	p := Pin{Locked: l != nil, Version: e.Version, Tag: e.Version, Git: e.Git(l), Rev: e.Rev, SourceHash: e.Hash, PrebuiltHash: e.PrebuiltHash}
	if l != nil {
		if e.Version == "latest" {
			p.Version, p.Tag = l.Version, l.Tag
			if p.Tag == "" {
				p.Tag = l.Version
			}
		}
		if p.Rev == "" {
			p.Rev = l.Rev
		}
		if p.SourceHash == "" {
			p.SourceHash = l.SourceHash
		}
		if p.PrebuiltHash == "" {
			p.PrebuiltHash = l.PrebuiltHash
		}
	}
	if e.Prebuilt != "" {
		p.PrebuiltURL = PrebuiltURL(e.Prebuilt, p.Tag, p.Version, system)
	}
	return p
}

// PrebuiltURL fills in a prebuilt template: {tag}, {version}, and {arch},
// the first part of the system ("x86_64" of "x86_64-linux").
func PrebuiltURL(template, tag, version, system string) string {
	arch, _, _ := strings.Cut(system, "-")
	return strings.NewReplacer("{tag}", tag, "{version}", version, "{arch}", arch).Replace(template)
}
