package realise_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// impureConfig: sdk sees a host directory (a module's raw derivation
// names it, as [nexis] sandbox_paths does for the stdlib's); app is an
// ordinary package built from sdk that keeps none of its paths, so only
// its build, not a reference, ties it to the host.
func impureConfig(t *testing.T, e *env) (sdk, app *builtins.Derivation, host string) {
	t.Helper()
	host = t.TempDir()
	os.WriteFile(filepath.Join(host, "marker"), []byte("from the host\n"), 0o644)
	os.Chmod(host, 0o755)
	sys := e.eval(t, `
[[packages]]
name = "sdk"
module = "sdk.star"

[[packages]]
name = "app"
version = "1"
build_system = "custom"
build_script = "app.sh"
dependencies = ["sdk"]
`, map[string]string{
		"sdk.star": fmt.Sprintf(`load("@stdlib//build.star", "STDENV")

def package():
    return derivation(
        name = "sdk",
        version = "1",
        builder = "/bin/sh",
        args = ["-e", "-c", "mkdir -p $out; cat %s/marker > $out/marker"],
        env = {"NEXIS_FHS_LAYERS": [STDENV], "NEXIS_SANDBOX_PATHS": [%q]},
        inputs = [STDENV],
    )
`, host, host),
		"app.sh": "mkdir -p $out; for d in $buildInputs; do [ -f $d/marker ] && tr a-z A-Z < $d/marker > $out/upper; done; test -s $out/upper\n",
	})
	return pkg(t, sys, "sdk"), pkg(t, sys, "app"), host
}

func outPath(t *testing.T, d *builtins.Derivation) storepath.Path {
	t.Helper()
	p, _, err := storepath.Parse("/store", d.Out())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A build that sees host paths registers impure outputs, and so does a
// build made from them even when its output keeps no reference to them;
// the stdenv and everything pure stay pure.
func TestImpureOutputsAreRecorded(t *testing.T) {
	e := newEnv(t, nil)
	sdk, app, host := impureConfig(t, e)
	e.mustBuild(t, app)
	why := store.SandboxPathsImpurity([]string{host})
	for d, want := range map[*builtins.Derivation]string{
		sdk: why,
		app: "it depends on " + sdk.Out() + ", which was " + why,
	} {
		pi, err := e.st.QueryPathInfo(outPath(t, d))
		if err != nil {
			t.Fatal(err)
		}
		if pi.Impure != want {
			t.Errorf("%s: Impure = %q, want %q", d.FullName(), pi.Impure, want)
		}
		if d == app && len(pi.References) != 0 {
			t.Fatalf("app refers to %v: the test wants a build-time dependency only", pi.References)
		}
	}
	for _, x := range builtins.Closure(app) {
		if x == sdk || x == app {
			continue
		}
		if pi, err := e.st.QueryPathInfo(outPath(t, x)); err == nil && pi.Impure != "" {
			t.Errorf("%s is impure: %s", x.FullName(), pi.Impure)
		}
	}
	e.verify(t)
}

// A cache that holds an impure package anyway (put there by an older
// nexis, which did not record impurity: made here by registering the
// bytes the builds give in another store, as if pure) is not asked for
// it: the package is built from what this machine's host holds, and
// recorded impure.
func TestImpureIsNotSubstituted(t *testing.T) {
	e := newEnv(t, nil)
	sdk, app, _ := impureConfig(t, e)

	old, err := store.Open(filepath.Join(t.TempDir(), "old"), store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for d, file := range map[*builtins.Derivation][2]string{sdk: {"marker", "from the host\n"}, app: {"upper", "FROM THE HOST\n"}} {
		src := filepath.Join(t.TempDir(), d.Name)
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, file[0]), []byte(file[1]), 0o644)
		if _, err := old.Ingest(src, outPath(t, d), store.IngestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := sign.Generate("old-cache-1")
	cacheDir := filepath.Join(t.TempDir(), "cache")
	dest, _ := cache.OpenDest(context.Background(), "file://"+cacheDir, cache.SSHOptions{})
	if _, err := cache.Copy(context.Background(), old, dest, []storepath.Path{outPath(t, sdk), outPath(t, app)}, cache.ExportOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	trusted, _ := sign.NewTrusted(key.Public().String())
	sub, err := cache.NewSubstituter([]string{"file://" + cacheDir}, trusted)
	if err != nil {
		t.Fatal(err)
	}

	res, err := e.build(t, realise.Options{Substituter: sub}, app)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count(realise.Substituted) != 0 || res.Status[app.ID()] != realise.Built || res.Status[sdk.ID()] != realise.Built {
		t.Fatalf("status %v: an impure build was substituted", res.Status)
	}
	if pi, err := e.st.QueryPathInfo(outPath(t, app)); err != nil || pi.Impure == "" {
		t.Fatalf("app after the build: %+v %v", pi, err)
	}
}

// recordingPool is a pool that records what it is handed and builds
// nothing (a fake: what a real pool does with a build is tested in
// realise/pool over ssh; here only whether it is asked matters).
type recordingPool struct {
	mu    sync.Mutex
	asked []string
}

func (p *recordingPool) Accepts(*builtins.Derivation) bool { return true }

func (p *recordingPool) Build(_ context.Context, _ *store.Store, d *builtins.Derivation, _ []storepath.Path, _ func(string), _ io.Writer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, d.FullName())
	return fmt.Errorf("the recording pool builds nothing: %w", realise.ErrNoMachine)
}

// An impure build is never handed to a builder of the pool (it would
// see that machine's host, and come back as pure): it is built here,
// with a note saying why. And a builder asked to build one (by an older
// nexis) refuses.
func TestImpureStaysOffBuilders(t *testing.T) {
	e := newEnv(t, nil)
	sdk, app, _ := impureConfig(t, e)
	rp := &recordingPool{}
	var notes []string
	res, err := realise.Build(context.Background(), e.st, []*builtins.Derivation{app}, realise.Options{
		Jobs: 2, LogDir: e.logs, Remote: rp, Reporter: &noteReporter{notes: &notes},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range rp.asked {
		if strings.HasPrefix(n, "sdk") || strings.HasPrefix(n, "app") {
			t.Errorf("%s was handed to the pool", n)
		}
	}
	if res.Status[app.ID()] != realise.Built && res.Status[app.ID()] != realise.Valid {
		t.Fatalf("app: %v", res.Status[app.ID()])
	}
	all := strings.Join(notes, "\n")
	if !strings.Contains(all, "building "+app.FullName()+" here, not on a builder of the pool") || !strings.Contains(all, "sandbox_paths") {
		t.Errorf("no note says why app stayed here: %q", notes)
	}

	payload, err := builtins.MarshalClosure(app)
	if err != nil {
		t.Fatal(err)
	}
	err = pool.ServeBuild(e.st, realise.Options{LogDir: e.logs})(context.Background(), payload, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "refusing to build "+app.FullName()+" for another machine") || !strings.Contains(err.Error(), sdk.FullName()) {
		t.Fatalf("a builder asked for an impure build: %v", err)
	}
}
