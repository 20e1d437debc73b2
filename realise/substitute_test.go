package realise_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/stdenvtest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/cache/cachetest"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
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
	// A machine that builds what it cannot substitute has the stdenv.
	freshWithStdenv := func(t *testing.T) *env {
		f := fresh(t)
		stdenvtest.Add(t, f.st)
		return f
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
		f := freshWithStdenv(t)
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

// TestFixedOutputCache: a trusted cache holds other bytes under the path
// of a fixed-output fetch, with its record keeping the content address
// or dropping it. Realising the fetch refuses the cache's copy either
// way (the derivation says what the bytes must be) and fetches from the
// origin; a fetch that unpacks an archive, whose address a cache's copy
// cannot be checked against, is never substituted.
func TestFixedOutputCache(t *testing.T) {
	good := []byte("the real release\n")
	archive := tarGz(t, map[string]string{"hello-1.0/README": "the real release\n"})
	e := newEnv(t, map[string][]byte{"src.txt": good, "src.tar.gz": archive})
	sys := e.eval(t, "[system]\nhostname = \"t\"\n", nil)
	fetch := func(expr string) *builtins.Derivation {
		v, err := sys.EvalExpr(strings.ReplaceAll(expr, "@URL@", e.srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		return v.(*builtins.Derivation)
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	flat := fetch(`fetch_url("@URL@/src.txt", sha256 = "` + sum(good) + `")`)
	unpacked := fetch(`fetch_url("@URL@/src.tar.gz", sha256 = "` + sum(archive) + `", unpack = True)`)
	key, _ := sign.Generate("compromised-1")
	trusted, _ := sign.NewTrusted(key.Public().String())

	for _, c := range []struct {
		name string
		d    *builtins.Derivation
		ca   bool
	}{{"flat, address kept", flat, true}, {"flat, address dropped", flat, false}, {"unpacked", unpacked, true}} {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, c.d.Out())
			ca, _ := c.d.ContentAddress()
			// The compromised side: other bytes at the path, signed.
			bad, err := store.Open(filepath.Join(t.TempDir(), "bad"), store.Options{LogicalDir: "/store"})
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			phys := bad.Physical(p)
			os.MkdirAll(filepath.Dir(phys), 0o755)
			evil := []byte("a back door\n")
			if c.d == unpacked {
				os.MkdirAll(phys, 0o755)
				os.WriteFile(filepath.Join(phys, "README"), evil, 0o444)
			} else {
				os.WriteFile(phys, evil, 0o444)
			}
			tree, err := treehash.Scan(phys, treehash.ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			reg := store.Registration{Path: p, TreeHash: tree.Hash, Files: tree.Files}
			if c.ca {
				reg.ContentAddress = ca.String()
			}
			if _, err := bad.Register([]store.Registration{reg}); err != nil {
				t.Fatal(err)
			}
			cacheDir := filepath.Join(t.TempDir(), "cache")
			dest, err := cache.OpenDest(context.Background(), "file://"+cacheDir, cache.SSHOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cache.Copy(context.Background(), bad, dest, []storepath.Path{p}, cache.ExportOptions{Key: key, TempDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			sub, err := cache.NewSubstituter([]string{"file://" + cacheDir}, trusted)
			if err != nil {
				t.Fatal(err)
			}
			f := &env{dir: t.TempDir(), srv: e.srv}
			if f.st, err = store.Open(filepath.Join(f.dir, "store"), store.Options{LogicalDir: "/store"}); err != nil {
				t.Fatal(err)
			}
			defer f.st.Close()
			var notes []string
			res, err := realise.Build(context.Background(), f.st, []*builtins.Derivation{c.d}, realise.Options{
				Jobs: 1, Substituter: sub, Reporter: &noteReporter{notes: &notes},
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status[c.d.ID()] != realise.Fetched {
				t.Fatalf("status %v, want fetched from the origin; notes %q", res.Status[c.d.ID()], notes)
			}
			if c.d == flat {
				if got := strings.Join(notes, "\n"); !strings.Contains(got, p.Hash) {
					t.Errorf("no refusal naming the path among the notes: %q", notes)
				}
				if b, _ := os.ReadFile(f.st.Physical(p)); string(b) != string(good) {
					t.Fatalf("stored %q", b)
				}
			} else if b, _ := os.ReadFile(filepath.Join(f.st.Physical(p), "README")); string(b) != "the real release\n" {
				t.Fatalf("stored %q", b)
			}
			f.verify(t)
		})
	}
}
