package realise_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// substConfig is a small closure: app needs lib, and mentions lib's
// output in its own, so lib is a runtime reference of app.
const substConfig = `
[[packages]]
name = "lib"
version = "1"
build_system = "custom"
build_script = "lib.sh"

[[packages]]
name = "app"
version = "1"
build_system = "custom"
build_script = "app.sh"
dependencies = ["lib"]
`

var substFiles = map[string]string{
	"lib.sh": "mkdir -p $out/lib; echo 'the library' > $out/lib/libx\n",
	"app.sh": "mkdir -p $out/bin; printf '#!/bin/sh\\necho uses %s\\n' \"$buildInputs\" > $out/bin/app; chmod +x $out/bin/app\n",
}

// TestSubstituteFromNginx: build, copy the closure up to a real nginx by
// PUT, wipe the store, realise again: everything is substituted, nothing
// is built. With the cache's key untrusted, or a tampered archive,
// nothing is substituted and the build falls back to building.
func TestSubstituteFromNginx(t *testing.T) {
	e := newEnv(t, nil)
	sys := e.eval(t, substConfig, substFiles)
	app := pkg(t, sys, "app")
	res, err := e.build(t, realise.Options{}, app)
	if err != nil {
		t.Fatal(err)
	}
	if res.Count(realise.Built) == 0 {
		t.Fatalf("first build built nothing: %v", res.Status)
	}
	appOut := mustParse(t, app.Out())

	key, _ := sign.Generate("nginx-cache-1")
	ng := cachetest.StartNginx(t, filepath.Join(e.dir, "cache"), cachetest.NginxOptions{})
	dest, err := cache.OpenDest(context.Background(), ng.URL+"/nexis", cache.SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := cache.Copy(context.Background(), e.st, dest, []storepath.Path{appOut}, cache.ExportOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	closure, _ := e.st.Closure([]storepath.Path{appOut})
	if stats.Sent != len(closure) || stats.Sent < 2 {
		t.Fatalf("copied %+v of a closure of %d", stats, len(closure))
	}

	// A fresh store stands for a wiped one (or another machine).
	fresh := func(t *testing.T) *env {
		t.Helper()
		dir := t.TempDir()
		st, err := store.Open(filepath.Join(dir, "store"), store.Options{LogicalDir: "/store"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return &env{dir: dir, st: st, srv: e.srv, logs: filepath.Join(dir, "logs")}
	}
	substituter := func(t *testing.T, trusted ...string) *cache.Substituter {
		t.Helper()
		tr, err := sign.NewTrusted(trusted...)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := cache.NewSubstituter([]string{ng.URL + "/nexis"}, tr)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}

	t.Run("substituted, nothing built", func(t *testing.T) {
		f := fresh(t)
		res, err := f.build(t, realise.Options{Substituter: substituter(t, key.Public().String())}, app)
		if err != nil {
			t.Fatal(err)
		}
		if n := res.Count(realise.Built); n != 0 {
			t.Fatalf("%d built, want everything substituted: %v", n, res.Status)
		}
		if res.Status[app.ID()] != realise.Substituted {
			t.Fatalf("app: %v", res.Status[app.ID()])
		}
		for _, p := range closure {
			a, _ := e.st.QueryPathInfo(p)
			b, err := f.st.QueryPathInfo(p)
			if err != nil {
				t.Fatalf("%s not substituted: %v", p.Name, err)
			}
			if a.TreeHash != b.TreeHash || len(a.References) != len(b.References) {
				t.Fatalf("%s differs after substitution", p.Name)
			}
		}
		f.verify(t)
	})

	t.Run("untrusted key: refused, built instead", func(t *testing.T) {
		f := fresh(t)
		other, _ := sign.Generate("someone-else-1")
		var notes []string
		rep := &noteReporter{notes: &notes}
		// Not f.build: it swaps the reporter for a printing one under -v.
		res, err := realise.Build(context.Background(), f.st, []*builtins.Derivation{app}, realise.Options{
			Jobs: 2, LogDir: f.logs, Substituter: substituter(t, other.Public().String()), Reporter: rep,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Count(realise.Substituted) != 0 || res.Status[app.ID()] != realise.Built {
			t.Fatalf("status %v", res.Status)
		}
		if !strings.Contains(strings.Join(notes, "\n"), "nginx-cache-1 is not in trusted_keys") {
			t.Fatalf("no clear refusal among the notes: %q", notes)
		}
		f.verify(t)
	})

	t.Run("tampered archive: nothing registers", func(t *testing.T) {
		// Flip a byte of every stored archive: the records stay genuine.
		var files []string
		filepath.Walk(filepath.Join(ng.Root, "nexis", "archive"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		for _, p := range files {
			b, _ := os.ReadFile(p)
			orig := append([]byte(nil), b...)
			b[len(b)/2] ^= 0x55
			os.WriteFile(p, b, 0o644)
			defer os.WriteFile(p, orig, 0o644)
		}
		f := fresh(t)
		sub := substituter(t, key.Public().String())
		if _, err := sub.Substitute(context.Background(), f.st, []storepath.Path{appOut}); err == nil {
			t.Fatal("a tampered archive was accepted")
		}
		for _, p := range closure {
			if ok, _ := f.st.IsValid(p); ok {
				t.Fatalf("%s registered from a tampered cache", p.Name)
			}
		}
		f.verify(t)
	})
}

// noteReporter keeps the notes; Note is called from many goroutines.
type noteReporter struct {
	mu    sync.Mutex
	notes *[]string
}

func (r *noteReporter) Planned(int, *realise.Plan)                    {}
func (r *noteReporter) Started(*builtins.Derivation, string)          {}
func (r *noteReporter) Line(*builtins.Derivation, string)             {}
func (r *noteReporter) Finished(*builtins.Derivation, realise.Status) {}
func (r *noteReporter) Failed(*realise.Failure)                       {}
func (r *noteReporter) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.notes = append(*r.notes, msg)
}
