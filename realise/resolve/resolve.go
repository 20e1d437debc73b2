// Package resolve pins what evaluation may not look up itself: it turns
// `version = "latest"` into the newest release tag of a package's git
// source, finds the commit of a tagged version, and computes the hashes
// of sources and prebuilt archives that the config leaves out. The result
// is a lang.Lock, which `nexis lock` and `nexis update` write beside the
// config and evaluation reads.
package resolve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise/fetch"
	"github.com/nexisos/nexis/store/treehash"
)

// Options tune Resolve.
type Options struct {
	// System is the target platform (lang.DefaultSystem if empty), for
	// {arch} in prebuilt URLs (lang.PrebuiltURL).
	System string
	// Update re-resolves packages that are already locked: all of them,
	// or only those named in Only.
	Update bool
	Only   []string
	// TempDir is where sources are fetched to be hashed (os.TempDir()
	// if empty).
	TempDir string
	// Note is told what is being resolved (nil: nothing).
	Note func(msg string)
}

// Change is one package whose pin changed.
type Change struct {
	Name string `json:"name"`
	// Old is nil for a new entry, New nil for a removed one.
	Old *lang.LockedPackage `json:"old"`
	New *lang.LockedPackage `json:"new"`
}

// Resolve returns the lock cfg needs, starting from old: entries of
// packages that need none are dropped, missing ones are resolved, and
// with Update the selected ones are resolved again. Nothing is written;
// an error leaves old as it was.
func Resolve(ctx context.Context, cfg *lang.Config, old *lang.Lock, opts Options) (*lang.Lock, []Change, error) {
	if opts.Note == nil {
		opts.Note = func(string) {}
	}
	if opts.System == "" {
		opts.System = lang.DefaultSystem
	}
	only := map[string]bool{}
	for _, n := range opts.Only {
		only[n] = true
	}
	entries := cfg.Packages()
	names := map[string]bool{}
	for _, e := range entries {
		if e.Name != "" {
			names[e.Name] = true
		}
	}
	for n := range only {
		if !names[n] {
			return nil, nil, fmt.Errorf("no package %q in the config", n)
		}
	}
	next := &lang.Lock{Version: lang.LockVersion, Packages: map[string]*lang.LockedPackage{}}
	var changes []Change
	for _, e := range entries {
		if e.Name == "" || !e.NeedsLock() {
			continue
		}
		prev := old.Packages[e.Name]
		redo := prev == nil || (opts.Update && (len(only) == 0 || only[e.Name]))
		if !redo {
			next.Packages[e.Name] = prev
			continue
		}
		lp, err := resolveOne(ctx, e, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("packages[%d] (%s): %w", e.Index, e.Name, err)
		}
		next.Packages[e.Name] = lp
		if prev == nil || *prev != *lp {
			changes = append(changes, Change{Name: e.Name, Old: prev, New: lp})
		}
	}
	for n, lp := range old.Packages {
		if next.Packages[n] == nil {
			changes = append(changes, Change{Name: n, Old: lp})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Name < changes[j].Name })
	return next, changes, nil
}

// resolveOne pins one entry that NeedsLock.
func resolveOne(ctx context.Context, e lang.PackageEntry, opts Options) (*lang.LockedPackage, error) {
	name, src := e.Name, e.Source
	lp := &lang.LockedPackage{Version: e.Version, Rev: e.Rev}
	tag := lp.Version
	git := e.Git(nil)
	if lp.Version == "latest" {
		if !git {
			return nil, fmt.Errorf("version = \"latest\" needs a git source (ending in .git) to find releases in; %q is not one", src)
		}
		opts.Note(fmt.Sprintf("%s: looking for the newest release of %s", name, src))
		tags, err := fetch.Tags(ctx, src)
		if err != nil {
			return nil, err
		}
		newest, ok := fetch.Newest(tags)
		if !ok {
			return nil, fmt.Errorf("%s has no release tags", src)
		}
		tag = newest.Name
		lp.Tag, lp.Version, lp.Rev = newest.Name, fetch.VersionOf(newest.Name), newest.Commit
	} else if git && lp.Rev == "" {
		tags, err := fetch.Tags(ctx, src)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			if t.Name == lp.Version || t.Name == "v"+lp.Version || fetch.VersionOf(t.Name) == lp.Version {
				lp.Rev = t.Commit
			}
		}
		if lp.Rev == "" {
			return nil, fmt.Errorf("no tag of %s names version %s: give rev = \"<commit>\"", src, lp.Version)
		}
	}
	if e.Fetched() && e.Hash == "" {
		h, err := sourceHash(ctx, src, lp.Rev, git, opts)
		if err != nil {
			return nil, err
		}
		lp.SourceHash = h
	}
	if e.Prebuilt != "" && e.PrebuiltHash == "" {
		u := lang.PrebuiltURL(e.Prebuilt, tag, lp.Version, opts.System)
		opts.Note(fmt.Sprintf("%s: hashing prebuilt archive %s", name, u))
		h, err := urlHash(ctx, u, opts)
		switch {
		case err != nil && e.FallbackToSource && ctx.Err() == nil:
			// Pinned as "no archive": evaluation then picks the source
			// build, until the next `nexis update` finds one.
			opts.Note(fmt.Sprintf("%s: no prebuilt archive (%v); it builds from source (fallback_to_source)", name, err))
		case err != nil:
			return nil, fmt.Errorf("prebuilt archive: %w (fix the prebuilt URL, give prebuilt_hash, or set fallback_to_source = true)", err)
		default:
			lp.PrebuiltURL, lp.PrebuiltHash = u, "sha256:"+h
		}
	}
	return lp, nil
}

func sourceHash(ctx context.Context, src, rev string, git bool, opts Options) (string, error) {
	if !git {
		opts.Note(fmt.Sprintf("hashing %s", src))
		h, err := urlHash(ctx, src, opts)
		if err != nil {
			return "", err
		}
		return "sha256:" + h, nil
	}
	opts.Note(fmt.Sprintf("fetching %s at %s to hash it", src, rev))
	dir, err := os.MkdirTemp(opts.TempDir, "nexis-lock-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	co := filepath.Join(dir, "checkout")
	if err := fetch.Git(ctx, src, rev, co); err != nil {
		return "", err
	}
	h, err := treehash.TreeHash(co)
	if err != nil {
		return "", err
	}
	return "blake3:" + h.Hex(), nil
}

func urlHash(ctx context.Context, u string, opts Options) (string, error) {
	dir, err := os.MkdirTemp(opts.TempDir, "nexis-lock-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	return fetch.URL(ctx, u, filepath.Join(dir, "download"), "sha256")
}
