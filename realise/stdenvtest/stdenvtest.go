// Package stdenvtest gives tests that build packages the stdenv CI made
// on this machine (scripts/make-stdenv; `make test` runs it first, and it
// caches its tarballs in .cache/stdenv, so a machine pays once).
//
// Tests build with it and never with the pinned default: Debian serves
// only its current point release, so the pinned tarballs are what users
// see, and CI builds what it can make today. Golden tests evaluate with
// the pinned hashes and build nothing.
package stdenvtest

import (
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// EnvVar names a manifest to use instead of the repository's cache.
const EnvVar = "NEXIS_TEST_STDENV"

var (
	once     sync.Once
	manifest *realise.StdenvManifest
	loadErr  error
)

// ManifestPath is the manifest tests use: $NEXIS_TEST_STDENV, else
// .cache/stdenv/stdenv-<system>.json at the top of the repository.
func ManifestPath() (string, error) {
	if p := os.Getenv(EnvVar); p != "" {
		return filepath.Abs(p)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache", "stdenv", "stdenv-"+realise.HostSystem()+".json"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory: set %s to a stdenv manifest", EnvVar)
		}
		dir = parent
	}
}

// Manifest loads the manifest once per test binary. A missing one fails
// the test and says how to make it: building without the stdenv is not
// a thing to skip quietly.
func Manifest(t testing.TB) *realise.StdenvManifest {
	t.Helper()
	once.Do(func() {
		p, err := ManifestPath()
		if err != nil {
			loadErr = err
			return
		}
		manifest, loadErr = realise.LoadStdenvManifest(p)
	})
	if loadErr != nil {
		t.Fatalf("%v\nbuild tests need the stdenv: run scripts/make-stdenv once (make test does), or set %s", loadErr, EnvVar)
	}
	return manifest
}

// Spec is the manifest as lang.Options.Stdenv takes it.
func Spec(t testing.TB) map[string]any { return Manifest(t).Spec() }

// Add puts the stdenv's core tarball into st, unpacked at the path
// evaluation computes (what `nexis store add-stdenv` does), and AddAll
// its tool layers too. Unpacking costs seconds, so each tarball is
// unpacked once per test binary and every store gets hard links of that
// tree to ingest: about a second per store.
func Add(t testing.TB, st *store.Store) {
	t.Helper()
	m := Manifest(t)
	add(t, st, m, m.StdenvLayer)
}

// AddAll adds the core and every tool layer.
func AddAll(t testing.TB, st *store.Store) {
	t.Helper()
	m := Manifest(t)
	add(t, st, m, m.StdenvLayer)
	names := make([]string, 0, len(m.Tools))
	for n := range m.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		add(t, st, m, m.Tools[n])
	}
}

var unpacked struct {
	sync.Mutex
	dir   string
	trees map[string]string // sha256 → unpacked tree
}

// Cleanup removes the unpacked trees; call it from TestMain.
func Cleanup() {
	unpacked.Lock()
	defer unpacked.Unlock()
	if unpacked.dir != "" {
		os.RemoveAll(unpacked.dir)
	}
}

func add(t testing.TB, st *store.Store, m *realise.StdenvManifest, l realise.StdenvLayer) {
	t.Helper()
	fixed := builtins.Fixed{Algo: "sha256", Hash: l.SHA256, Unpack: true}
	p, _, err := storepath.Parse(st.LogicalDir(), builtins.FixedOutputPath(st.LogicalDir(), fixed, l.Name))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.IsValid(p); err != nil || ok {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	tree, err := unpackOnce(m, l)
	if err != nil {
		t.Fatal(err)
	}
	stage, err := os.MkdirTemp(st.Dir(), ".stdenvtest-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stage)
	if out, err := exec.Command("cp", "-al", tree, filepath.Join(stage, "out")).CombinedOutput(); err != nil {
		t.Fatalf("linking the unpacked %s: %v\n%s", l.Name, err, out)
	}
	if _, err := st.Ingest(filepath.Join(stage, "out"), p, store.IngestOptions{ContentAddress: "fixed:unpack:sha256:" + l.SHA256, Move: true}); err != nil {
		t.Fatal(err)
	}
}

// unpackOnce unpacks a layer's tarball, checked against its hash, once
// per test binary.
func unpackOnce(m *realise.StdenvManifest, l realise.StdenvLayer) (string, error) {
	unpacked.Lock()
	defer unpacked.Unlock()
	if tree, ok := unpacked.trees[l.SHA256]; ok {
		return tree, nil
	}
	if unpacked.dir == "" {
		dir, err := os.MkdirTemp("", "nexis-stdenvtest-")
		if err != nil {
			return "", err
		}
		unpacked.dir, unpacked.trees = dir, map[string]string{}
	}
	// A scratch store checks the hash and unpacks the way nexis does.
	scratch, err := os.MkdirTemp(unpacked.dir, "scratch-")
	if err != nil {
		return "", err
	}
	st, err := store.Open(filepath.Join(scratch, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		return "", err
	}
	defer st.Close()
	p, _, _, err := realise.AddFixed(st, filepath.Join(m.Dir(), l.File), l.Name, true, l.SHA256)
	if err != nil {
		return "", err
	}
	unpacked.trees[l.SHA256] = st.Physical(p)
	return st.Physical(p), nil
}

// ELFProblems scans every ELF file of the store path logical (and returns
// what is wrong): an executable's interpreter must be a file inside the
// store, and every DT_NEEDED library of an executable, and of each
// library it loads, must be found in a store directory of the RPATH or
// RUNPATH the loader would search (the needing object's, then for RPATH
// those of the objects that loaded it). Nothing may resolve on the host.
func ELFProblems(st *store.Store, logical string) ([]string, error) {
	p, _, err := storepath.Parse(st.LogicalDir(), logical)
	if err != nil {
		return nil, err
	}
	root := st.Physical(p)
	var problems []string
	err = filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return err
		}
		f, err := elf.Open(path)
		if err != nil {
			return nil // not ELF
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, path)
		name := logical + "/" + filepath.ToSlash(rel)
		if f.Type == elf.ET_DYN && !hasInterp(f) {
			// A library: what it needs must be found by its own path.
			problems = append(problems, neededProblems(st, name, f, nil, map[string]bool{})...)
			return nil
		}
		for _, prog := range f.Progs {
			if prog.Type != elf.PT_INTERP {
				continue
			}
			b, err := io.ReadAll(prog.Open())
			if err != nil {
				return err
			}
			interp := strings.TrimRight(string(b), "\x00")
			if _, ok := physicalIn(st, interp); !ok {
				problems = append(problems, fmt.Sprintf("%s: interpreter %s is not a file in the store", name, interp))
			}
			problems = append(problems, neededProblems(st, name, f, nil, map[string]bool{})...)
		}
		return nil
	})
	return problems, err
}

// physicalIn maps a logical path to this machine's file, if it is one in
// a valid store path.
func physicalIn(st *store.Store, logical string) (string, bool) {
	if !strings.HasPrefix(logical, st.LogicalDir()+"/") {
		return "", false
	}
	p, rest, err := storepath.Parse(st.LogicalDir(), logical)
	if err != nil {
		return "", false
	}
	if ok, err := st.IsValid(p); err != nil || !ok {
		return "", false
	}
	phys := st.Physical(p) + filepath.FromSlash(rest)
	if fi, err := os.Stat(phys); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return phys, true
}

func dynStrings(f *elf.File, tag elf.DynTag) []string {
	v, _ := f.DynString(tag)
	var out []string
	for _, s := range v {
		out = append(out, strings.Split(s, ":")...)
	}
	return out
}

// neededProblems resolves f's DT_NEEDED as the loader would: f's RPATH
// (unless it has a RUNPATH) and its loaders' RPATHs, then f's RUNPATH.
func neededProblems(st *store.Store, name string, f *elf.File, loaderRPaths []string, seen map[string]bool) []string {
	var dirs []string
	runpath := dynStrings(f, elf.DT_RUNPATH)
	if len(runpath) == 0 {
		dirs = append(dynStrings(f, elf.DT_RPATH), loaderRPaths...)
	} else {
		dirs = runpath
	}
	var problems []string
	needed, _ := f.ImportedLibraries()
	for _, lib := range needed {
		found := ""
		for _, d := range dirs {
			if phys, ok := physicalIn(st, d+"/"+lib); ok {
				found = phys
				break
			}
		}
		if found == "" {
			problems = append(problems, fmt.Sprintf("%s: needs %s, which no store directory of its RPATH/RUNPATH %v holds", name, lib, dirs))
			continue
		}
		if seen[found] {
			continue
		}
		seen[found] = true
		lf, err := elf.Open(found)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", name, found, err))
			continue
		}
		problems = append(problems, neededProblems(st, name+" → "+lib, lf, append(dynStrings(f, elf.DT_RPATH), loaderRPaths...), seen)...)
		lf.Close()
	}
	return problems
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
