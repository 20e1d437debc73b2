package stdlib_test

import (
	"slices"
	"sort"
	"testing"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/manifest"
)

// The paths a config may not claim are written twice: in lib.star, to
// refuse them at evaluation with the key, and in manifest/guard.go, for
// activation. They must not drift.
func TestClaimRulesMatchManifest(t *testing.T) {
	lib := starlarkModule(t, "lib.star")
	strs := func(name string) []string {
		t.Helper()
		var out []string
		iter := starlark.Iterate(lib[name])
		if iter == nil {
			t.Fatalf("lib.star has no iterable %s", name)
		}
		defer iter.Done()
		var v starlark.Value
		for iter.Next(&v) {
			s, _ := starlark.AsString(v)
			out = append(out, s)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(l []string) []string {
		l = slices.Clone(l)
		sort.Strings(l)
		return l
	}
	var owned []string
	for p := range manifest.Owned {
		owned = append(owned, p)
	}
	for _, c := range []struct {
		name string
		goes []string
	}{
		{"OWNED_PATHS", owned},
		{"KERNEL_TREES", manifest.KernelTrees},
		{"SYSTEM_DIRS", manifest.SystemDirs},
		{"HOME_PREFIXES", manifest.HomePrefixes},
	} {
		if got, want := strs(c.name), sorted(c.goes); !slices.Equal(got, want) {
			t.Errorf("lib.star %s = %v, manifest has %v", c.name, got, want)
		}
	}
	d := lib["OWNED_PATHS"].(*starlark.Dict)
	for p, what := range manifest.Owned {
		v, _, _ := d.Get(starlark.String(p))
		if s, _ := starlark.AsString(v); s != what {
			t.Errorf("OWNED_PATHS[%q] = %q, manifest says %q", p, s, what)
		}
	}

	// The same verdicts, and the same words, from both.
	call := func(fn string, args ...starlark.Value) string {
		t.Helper()
		v, err := starlark.Call(&starlark.Thread{Name: "check"}, lib[fn], args, nil)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		s, _ := starlark.AsString(v)
		return s
	}
	for _, p := range []string{
		"/etc/shadow", "/etc/shadow-", "/etc/static", "/etc/static/x", "/etc/nexis/config.toml",
		"/etc/nexis/trusted-keys", "/var/lib/nexis", "/var/lib/nexis/ids.json", "/var/lib/nexiss",
		"/store", "/store/ab", "/storex", "/proc", "/proc/1", "/dev/sda", "/sys/x", "/run",
		"/run/current-system", "/run/x", "/", "/etc", "/usr", "/usr/bin/env", "/var/log",
		"/var/log/x", "/boot", "/boot/grub/grub.cfg", "/boot/grub/custom.cfg", "/boot/nexis/k",
		"/home", "/home/alice/.gitconfig",
	} {
		if got, want := call("unclaimable", starlark.String(p)), manifest.Unclaimable(p); got != want {
			t.Errorf("%s: lib.star says %q, manifest %q", p, got, want)
		}
	}
	for _, c := range []struct {
		name, home string
		writes     bool
	}{
		{"alice", "/home/alice", true}, {"alice", "/home", true}, {"alice", "/etc", true},
		{"alice", "/etc", false}, {"root", "/root", true}, {"alice", "/root", true},
		{"svc", "/var/lib/svc", true}, {"svc", "/var/lib/nexis", true}, {"svc", "/var/lib/nexis/x", true},
		{"www", "/srv/www", true}, {"svc", "/var/empty", false}, {"svc", "/", false},
		{"alice", "/home/a:b", false}, {"alice", "/home/a\nb", true}, {"alice", "home/a", true},
	} {
		got := call("home_problem", starlark.String(c.name), starlark.String(c.home), starlark.Bool(c.writes))
		want := manifest.HomeProblem(c.name, c.home, c.writes)
		if (got == "") != (want == "") {
			t.Errorf("home %s of %s (writes %v): lib.star says %q, manifest %q", c.home, c.name, c.writes, got, want)
		}
	}
	for _, s := range []string{"/bin/sh", "a:b", "a\nb", "a\tb", "Ünïcode", "a\x7fb"} {
		if got, want := call("field_problem", starlark.String(s)), manifest.FieldProblem(s); got != want {
			t.Errorf("field %q: lib.star says %q, manifest %q", s, got, want)
		}
	}
	for _, p := range []string{
		"/var/log/app.log", "/var/log/*.log", "/var/log/a b.log", "/var/log/a\tb", "/var/log/\"a\"",
		"/var/log/{a}", "/var/log/a#", "/var/*/a.log", "/etc/shadow", "/etc/shado*", "/var/lib/nexis/x",
		"/var/log", "/boot/x.log", "/var/log/../x", "/var/log/", "var/log/x", "/srv/app/caf\u00e9.log",
		"/usr/local/x.log", "/x.log", "/proc/x",
	} {
		got := call("log_path_problem", starlark.String(p))
		want := manifest.LogPathProblem(p)
		if (got == "") != (want == "") {
			t.Errorf("log path %q: lib.star says %q, manifest %q", p, got, want)
		}
	}
}
