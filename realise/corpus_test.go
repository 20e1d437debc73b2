//go:build realworld

package realise_test

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/sandbox"
	"github.com/nexisos/nexis/store/storepath"
)

// corpusCache is where scripts/fetch-corpus puts the release tarballs:
// $NEXIS_CORPUS_DIR, else .cache/corpus at the top of the repository.
func corpusCache(t *testing.T) string {
	if d := os.Getenv("NEXIS_CORPUS_DIR"); d != "" {
		return d
	}
	abs, err := filepath.Abs("../.cache/corpus")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestCorpus builds real upstream releases (realise/testdata/corpus:
// zlib, pcre2, nginx with both, libpng, json-c, lua, expat, and two
// programs of the config's own that use the libraries) from Debian's
// .orig tarballs, served on loopback, as `nexis build` would: one config,
// the stdenv made here, the sandbox. Then it runs each result from the
// store in a sandbox holding nothing but its closure, and checks that
// every ELF file's libraries resolve in the store.
//
// `make corpus` runs it (after scripts/fetch-corpus). Each build's time
// is logged; NEXIS_CORPUS_TIMES=FILE also writes them as "name seconds"
// lines, for bench/corpus-floor.
func TestCorpus(t *testing.T) {
	cache := corpusCache(t)
	files := map[string][]byte{}
	for _, p := range readCorpusPins(t) {
		b, err := os.ReadFile(filepath.Join(cache, p.File))
		if err != nil {
			t.Fatalf("%v\nthe corpus needs its release tarballs: run scripts/fetch-corpus (make corpus does)", err)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != p.SHA256 {
			t.Fatalf("%s/%s is not the pinned file (sha256 %s): run scripts/fetch-corpus again", cache, p.File, p.SHA256)
		}
		files[p.File] = b
	}
	e := newEnv(t, files)
	evalStart := time.Now()
	sys := e.evalCorpus(t)
	evalTime := time.Since(evalStart)

	timer := &buildTimer{start: map[string]time.Time{}, took: map[string]time.Duration{}}
	if testing.Verbose() {
		timer.inner = &realise.PlainReporter{W: os.Stderr}
	}
	// Two builds at once by default, one core each (CI's machine has
	// two); NEXIS_CORPUS_JOBS=1 builds one at a time with every core, as
	// bench/corpus/run.sh's floor does.
	jobs := 2
	if j, err := strconv.Atoi(os.Getenv("NEXIS_CORPUS_JOBS")); err == nil && j > 0 {
		jobs = j
	}
	buildStart := time.Now()
	res, err := realise.Build(context.Background(), e.st, []*builtins.Derivation{sys.Drv},
		realise.Options{LogDir: e.logs, Jobs: jobs, KeepGoing: true, Reporter: timer})
	buildTime := time.Since(buildStart)
	if err != nil {
		// The package, the phase and the end of its log.
		for _, f := range res.Failures {
			t.Error(realise.FailureText(f))
		}
		t.Fatal(err)
	}
	timer.report(t, sys, evalTime, buildTime, jobs)

	p := func(name string) *builtins.Derivation { return pkg(t, sys, name) }
	var all []*builtins.Derivation
	for _, item := range sys.Packages.Items() {
		all = append(all, item[1].(*builtins.Derivation))
	}

	t.Run("elf", func(t *testing.T) {
		e.elfInStore(t, all...)
		// The declared dependencies are the ones used: nginx loads zlib
		// and pcre2 from their store paths, nothing of the toolchain
		// stays in any closure.
		nginx := p("nginx")
		needed := elfNeeded(t, e.physical(t, nginx.Out()+"/sbin/nginx"))
		for _, lib := range []string{"libz.so.1", "libpcre2-8.so.0"} {
			if !slices.Contains(needed, lib) {
				t.Errorf("nginx does not link %s: it needs %v", lib, needed)
			}
		}
		for _, d := range all {
			closure, err := e.st.Closure([]storepath.Path{mustParse(t, d.Out())})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range closure {
				if strings.HasPrefix(c.Name, "stdenv") {
					t.Errorf("%s keeps the toolchain %s alive", d.FullName(), c.Name)
				}
			}
		}
		// CMake's GNUInstallDirs would say lib64 outside Debian.
		if _, err := os.Stat(e.physical(t, p("json-c").Out()+"/lib/libjson-c.so.5")); err != nil {
			t.Errorf("json-c did not install into lib/: %v", err)
		}
	})

	t.Run("nginx", func(t *testing.T) {
		conf := corpusConfigFile(t, sys, "config-nginx")
		state, logs := writableDir(t), writableDir(t)
		out, err := runInStoreWith(t, e.st, []sandbox.Bind{
			{Source: e.physical(t, conf), Target: conf},
			{Source: state, Target: "/var/lib/nginx", Writable: true},
			{Source: logs, Target: "/var/log/nginx", Writable: true},
		}, p("nginx").Out()+"/sbin/nginx", "-t", "-c", conf, "-e", "stderr")
		if err != nil || !strings.Contains(out, "syntax is ok") || !strings.Contains(out, "test is successful") {
			t.Fatalf("nginx -t -c %s: %v\n%s", conf, err, out)
		}
	})

	t.Run("lua", func(t *testing.T) {
		out, err := runInStore(t, e.st, p("lua").Out()+"/bin/lua", "-e", `print(_VERSION, 6 * 7, ("%.3f"):format(math.pi), ("x"):rep(3, ","))`)
		if want := "Lua 5.4\t42\t3.142\tx,x,x\n"; err != nil || out != want {
			t.Fatalf("lua -e: %q %v, want %q", out, err, want)
		}
	})

	t.Run("pcre2", func(t *testing.T) {
		work := writableDir(t)
		os.WriteFile(filepath.Join(work, "in"), []byte("/(?<year>\\d{4})-(?<month>\\d\\d)/\n    released 2022-10-19\n    no date here\n"), 0o644)
		pcre2test := p("pcre2").Out() + "/bin/pcre2test"
		out, err := runInStoreWith(t, e.st, []sandbox.Bind{{Source: work, Target: "/work", Writable: true}}, pcre2test, "/work/in")
		if err != nil || !strings.Contains(out, " 0: 2022-10\n 1: 2022\n 2: 10\n") || !strings.Contains(out, "No match") {
			t.Fatalf("pcre2test: %v\n%s", err, out)
		}
		// -C with an option prints its value and exits with it.
		var exit *sandbox.ExitError
		if out, err := runInStore(t, e.st, pcre2test, "-C", "jit"); !errors.As(err, &exit) || exit.Code != 1 || out != "1\n" {
			t.Errorf("pcre2test -C jit: %q %v, want 1 (built with --enable-jit)", out, err)
		}
	})

	t.Run("libpng", func(t *testing.T) {
		work := writableDir(t)
		bind := []sandbox.Bind{{Source: work, Target: "/work", Writable: true}}
		out, err := runInStoreWith(t, e.st, bind, p("demo-xmlpng").Out()+"/bin/demo-png", "/work/t.png")
		if want := "8x8, first pixel 0,255,128, libpng 1.6.39\n"; err != nil || out != want {
			t.Fatalf("demo-png: %q %v, want %q", out, err, want)
		}
		if out, err := runInStoreWith(t, e.st, bind, p("libpng").Out()+"/bin/pngfix", "/work/t.png"); err != nil {
			t.Fatalf("pngfix on the PNG demo-png wrote: %v\n%s", err, out)
		}
	})

	t.Run("expat", func(t *testing.T) {
		out, err := runInStore(t, e.st, p("demo-xmlpng").Out()+"/bin/demo-expat")
		if want := "pkg expat\npkg zlib\n3 elements, expat_2.5.0\n"; err != nil || out != want {
			t.Fatalf("demo-expat: %q %v, want %q", out, err, want)
		}
	})

	t.Run("json-c", func(t *testing.T) {
		out, err := runInStore(t, e.st, p("demo-jsonc").Out()+"/bin/demo-jsonc")
		if want := `{"name":"nexis","builds":[1,2,3]}` + "\n"; err != nil || out != want {
			t.Fatalf("demo-jsonc: %q %v, want %q", out, err, want)
		}
	})
}

// evalCorpus copies the corpus config beside the test's other files,
// with the loopback server's URL for @URL@, and evaluates it.
func (e *env) evalCorpus(t *testing.T) *lang.System {
	t.Helper()
	cdir := filepath.Join(e.dir, "config")
	err := filepath.WalkDir(corpusDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(corpusDir, p)
		dst := filepath.Join(cdir, rel)
		if de.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "config.toml" {
			b = []byte(strings.ReplaceAll(string(b), "@URL@", e.srv.URL))
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := lang.Eval(filepath.Join(cdir, "config.toml"), evalOptions(t))
	if err != nil {
		t.Fatalf("eval: %v", err)
	}
	return sys
}

// corpusConfigFile is the store path of the file nexis made for a
// [config_files] entry.
func corpusConfigFile(t *testing.T, sys *lang.System, name string) string {
	t.Helper()
	for _, d := range builtins.Closure(sys.Drv) {
		if d.Name == name && d.Builder == "builtin:write_file" {
			return d.Out()
		}
	}
	t.Fatalf("no store file %s in the system's closure", name)
	return ""
}

// writableDir is a directory the build user can write, for a program's
// state as activation would make it.
func writableDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func elfNeeded(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return libs
}

// buildTimer times each derivation from its start to its registration.
type buildTimer struct {
	inner realise.Reporter
	mu    sync.Mutex
	start map[string]time.Time
	took  map[string]time.Duration
}

func (r *buildTimer) Planned(n int, p *realise.Plan) {
	if r.inner != nil {
		r.inner.Planned(n, p)
	}
}

func (r *buildTimer) Started(d *builtins.Derivation, kind string) {
	r.mu.Lock()
	r.start[d.ID()] = time.Now()
	r.mu.Unlock()
	if r.inner != nil {
		r.inner.Started(d, kind)
	}
}

func (r *buildTimer) Line(d *builtins.Derivation, line string) {
	if r.inner != nil {
		r.inner.Line(d, line)
	}
}

func (r *buildTimer) Finished(d *builtins.Derivation, s realise.Status) {
	r.mu.Lock()
	if t0, ok := r.start[d.ID()]; ok {
		r.took[d.ID()] = time.Since(t0)
	}
	r.mu.Unlock()
	if r.inner != nil {
		r.inner.Finished(d, s)
	}
}

func (r *buildTimer) Failed(f *realise.Failure) {
	if r.inner != nil {
		r.inner.Failed(f)
	}
}

func (r *buildTimer) Note(msg string) {
	if r.inner != nil {
		r.inner.Note(msg)
	}
}

// report logs each package's build time (and writes them to
// $NEXIS_CORPUS_TIMES), with the evaluation and the whole build.
func (r *buildTimer) report(t *testing.T, sys *lang.System, evalTime, buildTime time.Duration, jobs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	type row struct {
		name string
		took time.Duration
	}
	var rows []row
	for _, item := range sys.Packages.Items() {
		d := item[1].(*builtins.Derivation)
		if took, ok := r.took[d.ID()]; ok {
			rows = append(rows, row{d.Name, took})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	var b strings.Builder
	fmt.Fprintf(&b, "evaluation\t%.3f\n", evalTime.Seconds())
	for _, x := range rows {
		fmt.Fprintf(&b, "%s\t%.2f\n", x.name, x.took.Seconds())
	}
	fmt.Fprintf(&b, "all (%d at once)\t%.2f\n", jobs, buildTime.Seconds())
	t.Logf("seconds:\n%s", b.String())
	if f := os.Getenv("NEXIS_CORPUS_TIMES"); f != "" {
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
