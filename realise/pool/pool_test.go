package pool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
)

func TestParseMachines(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	ms, err := ParseMachines([]Spec{{Name: "fast", URL: "ssh://b@host:2222", Systems: []string{"x86_64-linux"}, MaxJobs: n(3), SpeedFactor: n(2), Features: []string{"kvm"}}})
	if err != nil {
		t.Fatal(err)
	}
	m := ms[0]
	if m.Name != "fast" || m.URL.Port() != "2222" || m.MaxJobs != 3 || m.SpeedFactor != 2 || m.Features[0] != "kvm" {
		t.Fatalf("%+v", m)
	}
	// Defaults are lang's (the schema): a Spec without them is not one
	// lang.Config.Builders made.
	if _, err := ParseMachines([]Spec{{Name: "b", URL: "ssh://h", Systems: []string{"x"}}}); err == nil || !strings.Contains(err.Error(), "nexis.builders.b.max_jobs is missing") {
		t.Fatalf("a spec without max_jobs: %v", err)
	}
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Systems: []string{"x86_64-linux"}}, "nexis.builders.b.url is missing"},
		{Spec{URL: "ssh://h"}, "nexis.builders.b.systems is missing"},
		{Spec{URL: "ssh://h/path", Systems: []string{"x"}}, "nexis.builders.b.url"},
		{Spec{URL: "ssh://h", Systems: []string{"x"}, MaxJobs: n(0)}, "nexis.builders.b.max_jobs = 0"},
		{Spec{URL: "ssh://h", Systems: []string{"x"}, HostKey: "AAAA"}, "nexis.builders.b.host_key"},
	} {
		c.spec.Name = "b"
		if _, err := ParseMachines([]Spec{c.spec}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %q", c.spec, err, c.want)
		}
	}
}

// TestLeastLoaded: jobs go to the machine with the fewest jobs over
// speed factor, the faster on a tie, each taking twice its max_jobs (its
// builds, and as many jobs copying or fetching); a machine that does
// not build the system or lacks a required feature gets none; a full
// pool makes the next job wait; a pool with no machine left for a
// system says so.
func TestLeastLoaded(t *testing.T) {
	p, err := New([]Machine{
		{Name: "slow", Systems: []string{"x86_64-linux"}, MaxJobs: 2, SpeedFactor: 1},
		{Name: "fast", Systems: []string{"x86_64-linux"}, MaxJobs: 3, SpeedFactor: 3},
		{Name: "arm", Systems: []string{"aarch64-linux"}, MaxJobs: 4, Features: []string{"kvm"}},
	}, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	x86 := &builtins.Derivation{Name: "x", System: "x86_64-linux"}
	ctx := context.Background()
	var got []string
	for range 10 {
		m, err := p.acquire(ctx, x86)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.Name)
	}
	// fast 0/3 (tie, faster) → slow 0/1 → fast 1/3 → fast 2/3 → fast
	// 3/3 (tie with slow 1/1) → slow 1/1 → fast 4/3 → fast 5/3 (then
	// full: 6 jobs) → slow 2/1 → slow 3/1 (full: 4 jobs).
	if strings.Join(got, " ") != "fast slow fast fast fast slow fast fast slow slow" {
		t.Fatalf("order %v", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.acquire(cancelled, x86); !errors.Is(err, context.Canceled) {
		t.Fatalf("a full pool: %v", err)
	}
	kvm := &builtins.Derivation{Name: "vm", System: "aarch64-linux", Env: []builtins.EnvVar{{Name: realise.RequiredFeaturesEnv, Value: "kvm"}}}
	if !p.Accepts(kvm) || p.Accepts(&builtins.Derivation{System: "aarch64-linux", Env: []builtins.EnvVar{{Name: realise.RequiredFeaturesEnv, Value: "big-parallel"}}}) {
		t.Fatal("features")
	}
	p.markDown(p.machines[2], errors.New("gone"))
	if p.Accepts(kvm) {
		t.Fatal("a machine that went away accepts")
	}
	if _, err := p.acquire(ctx, kvm); !errors.Is(err, realise.ErrNoMachine) {
		t.Fatalf("no machine left: %v", err)
	}
}

// TestWireClosure: a derivation closure decodes to the same identities
// and output paths; a changed encoding is refused.
func TestWireClosure(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte(`[system]
hostname = "t"

[[packages]]
name = "lib"
version = "1.0"
build_system = "custom"
build_script = "b.sh"

[[packages]]
name = "app"
version = "2.0"
build_system = "custom"
build_script = "b.sh"
dependencies = ["lib"]
env = { NOTE = "<&> \"quoted\" ünïcode" }
`), 0o644)
	os.WriteFile(filepath.Join(dir, "b.sh"), []byte("mkdir -p $out && echo '<built>' > $out/x\n"), 0o644)
	sys, err := lang.Eval(cfg, lang.Options{StoreDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := sys.Packages.Get(starlark.String("app"))
	app := v.(*builtins.Derivation)
	b, err := builtins.MarshalClosure(app)
	if err != nil {
		t.Fatal(err)
	}
	got, err := builtins.UnmarshalClosure(b)
	if err != nil {
		t.Fatal(err)
	}
	want := builtins.Closure(app)
	have := builtins.Closure(got)
	if len(want) != len(have) {
		t.Fatalf("%d derivations, want %d", len(have), len(want))
	}
	for i := range want {
		if want[i].ID() != have[i].ID() || want[i].Out() != have[i].Out() {
			t.Fatalf("%s: %s %s, want %s %s", want[i].FullName(), have[i].ID(), have[i].Out(), want[i].ID(), want[i].Out())
		}
	}
	bad := strings.Replace(string(b), `"NOTE":`, `"NOTE" :`, 1)
	if bad == string(b) {
		t.Fatal("test: nothing replaced")
	}
	if _, err := builtins.UnmarshalClosure([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a canonical encoding") {
		t.Fatalf("a changed encoding: %v", err)
	}
}
