package lang

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

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
	Version      string `toml:"version"`                 // e.g. "9.1.0"
	Tag          string `toml:"tag,omitempty"`           // e.g. "v9.1.0"
	Rev          string `toml:"rev,omitempty"`           // commit of Tag, for git sources
	SourceHash   string `toml:"source_hash,omitempty"`   // "blake3:…" or "sha256:…"
	PrebuiltURL  string `toml:"prebuilt_url,omitempty"`  // the template, filled in
	PrebuiltHash string `toml:"prebuilt_hash,omitempty"` // "sha256:…"
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
