// Package realise turns derivations into valid store paths: it walks the
// derivation graph, skips outputs that are already valid, substitutes
// prebuilt archives, fetches fixed-output sources, and runs every other
// builder in a sandbox (realise/sandbox), in dependency order with a
// bounded number of parallel jobs. Outputs are handed to the store's
// Ingest, which normalises, dedupes, scans references (among the build's
// input closure only) and registers atomically: a failed or interrupted
// build registers nothing.
//
// Every output a Build looks at or makes, and every source it adds, is a
// temporary root of this process (store.AddTempRoots) before it is
// checked or registered, so a collection running beside the build never
// takes what the build is about to use.
//
// Builders named "builtin:…" run in this process: fetchurl, fetchgit,
// write_file, copy (a prebuilt archive's package) and system. Everything else is a program run in the sandbox
// with the derivation's args and a cleared environment.
package realise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise/fetch"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/storepath"
)

// DefaultBuildUID is the build user's uid (and gid). Every build runs as
// this one user, so nothing of which job slot ran it reaches an output
// (`id -u`, owners in an archive); concurrent builds are kept apart by
// their namespaces (each has its own PID, mount, IPC and network
// namespace, and sees no other build's files or processes).
const DefaultBuildUID = 30001

// Options tune Build.
type Options struct {
	// Jobs is the number of builds run at once (runtime.NumCPU() if 0).
	Jobs int
	// Cores is NEXIS_BUILD_CORES, the parallelism a build may use inside
	// itself (max(1, NumCPU/Jobs) if 0). Like Nix's NIX_BUILD_CORES it is
	// not part of any identity: builders must give the same bytes for
	// any value (the stdlib's do; tests build with 1 and 2).
	Cores int
	// KeepGoing builds everything that does not depend on a failure
	// instead of stopping at the first one.
	KeepGoing bool
	// Timeout bounds every builder that sets no timeout of its own
	// (0: no limit).
	Timeout time.Duration
	// LogDir keeps a log per build (<LogDir>/<h0h1>/<hash>-<name>.log).
	// Empty: logs are not kept.
	LogDir string
	// BuildDir holds the builds in progress; it must be on the store's
	// filesystem so outputs move into the store without a copy. Default
	// <physical store>/.build.
	BuildDir string
	// BuildUID is the uid and gid of the build user (DefaultBuildUID if
	// 0).
	BuildUID int
	// Check rebuilds every derivation of the closure this machine can
	// build (sandboxed builds, not fetches or builtins) once it is
	// valid, and compares the result with what the store holds,
	// registering nothing. CheckRoots limits that to the roots.
	Check      bool
	CheckRoots bool
	// Reporter is told what happens (nil: nothing is reported).
	Reporter Reporter
	// Substituter, when set, is asked for every output before it is
	// built ([nexis.substituters]); see trySubstitute.
	Substituter *cache.Substituter
	// LocalFiles are files on this machine that fixed-output fetches
	// take instead of downloading, by "<algo>:<hex digest>" (a stdenv
	// made by scripts/make-stdenv: StdenvManifest.LocalFiles). The hash
	// is checked as for a download.
	LocalFiles map[string]string
	// Remote, when set, builds what its machines accept there
	// ([nexis.builders]); see buildRemote.
	Remote Remote
}

func (o *Options) fill(st *store.Store) {
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Cores <= 0 {
		o.Cores = max(1, runtime.NumCPU()/o.Jobs)
	}
	if o.BuildDir == "" {
		o.BuildDir = filepath.Join(st.Dir(), ".build")
	}
	if o.BuildUID == 0 {
		o.BuildUID = DefaultBuildUID
	}
	if o.Reporter == nil {
		o.Reporter = nopReporter{}
	}
}

// Status is what happened to one derivation.
type Status int

const (
	// Pending: not reached (the run stopped first).
	Pending Status = iota
	// Valid: its outputs were already in the store.
	Valid
	// Built: its builder ran (in the sandbox, or in this process for
	// builtin:write_file and builtin:system).
	Built
	// Fetched: a fixed-output fetch produced it.
	Fetched
	// Substituted: its prebuilt archive was used instead of a build.
	Substituted
	// Failed: its own build failed.
	Failed
	// DependencyFailed: an input could not be realised.
	DependencyFailed
	// Cancelled: stopped by an interrupt or an earlier failure.
	Cancelled
)

func (s Status) String() string {
	return [...]string{"pending", "valid", "built", "fetched", "substituted", "failed", "dependency failed", "cancelled"}[s]
}

// Failure is a derivation whose own build failed.
type Failure struct {
	Drv *builtins.Derivation
	Err error
	// Log is the kept log file, "" when logs are not kept.
	Log string
	// Tail is the end of the log.
	Tail []string
	// Phase is the builder's phase when it failed ("unpack", "build
	// (configure)", ...: its last "nexis: " line), "" if it named none.
	Phase string
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s (%s): %v", f.Drv.Out(), f.Drv.ID()[:16], f.Err)
}

// Check is the outcome of rebuilding a valid path (Options.Check).
type Check struct {
	Drv       *builtins.Derivation `json:"-"`
	Path      string               `json:"path"`
	Identical bool                 `json:"identical"`
	Want      string               `json:"registered"` // tree hash in the store
	Got       string               `json:"rebuilt"`    // tree hash of the rebuild
	// Damaged says what is wrong with the store's copy on disk ("" when
	// it is the registered one): a rebuild identical to the
	// registration proves nothing about a copy that is gone or changed.
	Damaged string `json:"damaged,omitempty"`
}

// Result is what Build did.
type Result struct {
	// Status of every derivation of the closure, by ID.
	Status map[string]Status
	// Failures in the order they happened.
	Failures []*Failure
	Checks   []Check
	// Restored are the damaged outputs put back (Repair), with how.
	Restored []Restoration
}

// Count returns how many derivations ended in status s.
func (r *Result) Count(s Status) int {
	n := 0
	for _, x := range r.Status {
		if x == s {
			n++
		}
	}
	return n
}

// ErrFailed is wrapped by Build's error when some build failed.
var ErrFailed = errors.New("build failed")

// ErrHashMismatch is wrapped by a fixed-output build's error when its
// output is not what its hash names, and then by Build's.
var ErrHashMismatch = fetch.ErrHashMismatch

// Build realises roots (and everything they need) in st, which must be
// open for writing with the logical store directory the derivations were
// evaluated for. It returns when every root is valid, or when a build
// failed (all of them failed, with KeepGoing); the error then wraps
// ErrFailed and the Result lists the failures. Cancelling ctx stops
// every running build; nothing partial is registered.
func Build(ctx context.Context, st *store.Store, roots []*builtins.Derivation, opts Options) (*Result, error) {
	return build(ctx, st, roots, opts, nil)
}

// build is Build; outputs whose hashes are in damaged are registered but
// damaged on disk, and are restored (Repair) instead of taken as valid.
func build(ctx context.Context, st *store.Store, roots []*builtins.Derivation, opts Options, damaged map[string]bool) (*Result, error) {
	opts.fill(st)
	for _, d := range builtins.Closure(roots...) {
		if d.Store != st.LogicalDir() {
			return nil, fmt.Errorf("%s was evaluated for the store %s, but the store is %s: evaluate with --store %s", d.FullName(), d.Store, st.LogicalDir(), st.LogicalDir())
		}
	}
	if err := os.MkdirAll(opts.BuildDir, 0o711); err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	// We hold the store's writer lock, so the build directories of other
	// processes were left by ones that are gone (killed mid-build). Our
	// own is shared by concurrent Builds of this process.
	own := "p" + strconv.Itoa(os.Getpid())
	if err := clearBuildDir(opts.BuildDir, own); err != nil {
		return nil, err
	}
	opts.BuildDir = filepath.Join(opts.BuildDir, own)
	release, err := useBuildDir(opts.BuildDir)
	if err != nil {
		return nil, err
	}
	defer release()
	plan, err := MakePlan(st, roots)
	if err != nil {
		return nil, err
	}
	s := newScheduler(ctx, st, opts)
	s.damaged = damaged
	defer s.cancel(nil)
	opts.Reporter.Planned(len(plan.Build)+len(plan.Fetch), plan)
	goals := make([]*goal, len(roots))
	for i, r := range roots {
		goals[i] = s.want(r)
	}
	var rootErr error
	for _, g := range goals {
		<-g.done
		if g.err != nil && rootErr == nil {
			rootErr = g.err
			if !opts.KeepGoing {
				s.cancel(g.err)
			}
		}
	}
	if (opts.Check || opts.CheckRoots) && rootErr == nil {
		rootErr = s.checkAll(roots)
	}
	s.wg.Wait()
	res := s.result()
	if rootErr != nil {
		if n := len(res.Failures); n > 0 {
			for _, f := range res.Failures {
				if errors.Is(f.Err, ErrHashMismatch) {
					return res, fmt.Errorf("%w: %d derivation(s) failed (%w)", ErrFailed, n, ErrHashMismatch)
				}
			}
			return res, fmt.Errorf("%w: %d derivation(s) failed", ErrFailed, n)
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
		return res, rootErr
	}
	return res, nil
}

// checkAll rebuilds, for --check, every derivation of the roots'
// closure that this machine builds in a sandbox and that is valid (an
// input a prebuilt or a cache stood in for may not be), inputs first;
// with CheckRoots only the roots.
func (s *scheduler) checkAll(roots []*builtins.Derivation) error {
	todo := roots
	if !s.opts.CheckRoots {
		todo = builtins.Closure(roots...)
	}
	for _, d := range todo {
		if !s.opts.CheckRoots && (d.Fixed != nil || builtins.IsBuiltin(d.Builder)) {
			continue
		}
		if valid, err := outputsValid(s.st, d); err != nil || !valid {
			if err != nil {
				return err
			}
			continue
		}
		c, err := s.check(d)
		if err != nil {
			return err
		}
		s.res.Checks = append(s.res.Checks, c)
	}
	return nil
}

// buildDirs counts the Builds of this process in each of its build
// directories (a builder serving a pool runs many at once): the last
// one out removes it, so that none removes it under another's feet.
var buildDirs = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// useBuildDir makes dir for a Build; release removes it when no other
// Build of this process uses it.
func useBuildDir(dir string) (release func(), err error) {
	buildDirs.Lock()
	defer buildDirs.Unlock()
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	buildDirs.n[dir]++
	return func() {
		buildDirs.Lock()
		defer buildDirs.Unlock()
		if buildDirs.n[dir]--; buildDirs.n[dir] == 0 {
			delete(buildDirs.n, dir)
			os.Remove(dir)
		}
	}, nil
}

func clearBuildDir(dir, keep string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("build directory: %w", err)
	}
	for _, e := range ents {
		if e.Name() == keep {
			continue
		}
		if err := removeAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("removing an interrupted build: %w", err)
		}
	}
	return nil
}

// Plan is what Build would do, for --dry-run.
type Plan struct {
	Fetch []*builtins.Derivation // fixed-output fetches
	Build []*builtins.Derivation // sandboxed builds and builtin steps
}

// MakePlan lists what realising roots would fetch and build.
func MakePlan(st *store.Store, roots []*builtins.Derivation) (*Plan, error) {
	p := &Plan{}
	seen := map[string]bool{}
	var visit func(d *builtins.Derivation) error
	visit = func(d *builtins.Derivation) error {
		if seen[d.ID()] {
			return nil
		}
		seen[d.ID()] = true
		valid, err := outputsValid(st, d)
		if err != nil || valid {
			return err
		}
		for _, in := range d.Drvs {
			if err := visit(in); err != nil {
				return err
			}
		}
		if d.Fixed != nil {
			p.Fetch = append(p.Fetch, d)
		} else {
			p.Build = append(p.Build, d)
		}
		return nil
	}
	for _, r := range roots {
		if err := visit(r); err != nil {
			return nil, err
		}
	}
	for _, l := range [][]*builtins.Derivation{p.Fetch, p.Build} {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Out() < l[j].Out() })
	}
	return p, nil
}

// outputPath parses output o of d.
func outputPath(d *builtins.Derivation, o string) (storepath.Path, error) {
	full, _ := d.OutputPath(o)
	p, _, err := storepath.Parse(d.Store, full)
	if err != nil {
		return storepath.Path{}, fmt.Errorf("%s: output %s: %w", d.FullName(), o, err)
	}
	return p, nil
}

func outputsValid(st *store.Store, d *builtins.Derivation) (bool, error) {
	for _, o := range d.Outputs {
		p, err := outputPath(d, o)
		if err != nil {
			return false, err
		}
		ok, err := st.IsValid(p)
		if err != nil {
			return false, fmt.Errorf("querying %s: %w", d.Out(), err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
