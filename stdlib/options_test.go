package stdlib_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/nexisos/nexis/lang"
)

// Every key the schema declares is read: set to its example, it changes
// the system (or, for a key Go reads, it is named by that reader). A key
// nothing reads — as system.arch was — fails here, and a key the stdlib
// reads but the schema does not declare cannot be set at all (Check
// refuses it), so reading it is dead code that a default() call names
// and refuses.
func TestEveryKeyTakesEffect(t *testing.T) {
	base := readTOML(t, "testdata/options/config.toml")
	// Keys whose example only means something beside other settings:
	// the declared key → settings (nil removes one) made on both sides
	// of the comparison.
	beside := map[string]map[string]any{
		"users.<name>.files.<path>.symlink":  {"users.<name>.files.<path>.content": nil},
		"users.<name>.files.<path>.source":   {"users.<name>.files.<path>.content": nil},
		"config_files.<name>.source":         {"config_files.<name>.content": nil, "config_files.<name>.variables": map[string]any{"port": int64(1)}},
		"config_files.<name>.variables":      {"config_files.<name>.content": nil, "config_files.<name>.source": "templates/app.conf.tmpl"},
		"packages[].build_script":            {"packages[].build_system": "custom"},
		"packages[].args":                    {"packages[].module": "pkgs/app.star"},
		"packages[].prebuilt":                {"packages[].prebuilt_hash": "sha256:2222222222222222222222222222222222222222222222222222222222222222"},
		"packages[].prebuilt_hash":           {"packages[].prebuilt": "https://example.org/app-{version}-{arch}.tar.gz"},
		"packages[].fallback_to_source":      {"packages[].prebuilt": "https://example.org/app-{version}-{arch}.tar.gz"},
		"packages[].build_flags":             {"packages[].build_system": "configure"},
		"network.gateway":                    {"network.static_ip": "192.168.1.10/24"},
		"dinit_services.<name>.stop_command": {"dinit_services.<name>.type": "scripted"},
		"nexis.dinit.<name>.stop_command":    {"nexis.dinit.<name>.type": "scripted"},
		"filesystems[].label":                {"filesystems[].device": nil},
		"filesystems[].uuid":                 {"filesystems[].device": nil},
	}
	// Keys that only restate something else, so no value of theirs can
	// change the system.
	restate := map[string]string{
		"dinit_services.<name>.name": "a service is named by its table; name may only repeat it",
		"nexis.dinit.<name>.name":    "a service is named by its table; name may only repeat it",
		"network.dhcp":               "it must agree with static_ip (true without, false with)",
		"nexis.stdenv.system":        "a check: a stdenv made for another system is refused",
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/options")); err != nil {
		t.Fatal(err)
	}
	eval := func(data map[string]any) (string, error) {
		var b bytes.Buffer
		if err := toml.NewEncoder(&b).Encode(data); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(cfg, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		sys, err := lang.Eval(cfg, lang.Options{StoreDir: "/store"})
		if err != nil {
			return "", err
		}
		return sys.Drv.ID(), nil
	}
	if _, err := eval(base); err != nil {
		t.Fatalf("the base config: %v", err)
	}
	for _, o := range lang.ConfigSchema.Options() {
		s := o.Schema
		if s.Kind == lang.KindTable || (s.Elem != nil && s.Elem.Kind == lang.KindTable) {
			continue
		}
		t.Run(o.Key, func(t *testing.T) {
			if why, ok := restate[o.Key]; ok {
				t.Skip(why)
			}
			if s.ReadBy != "" {
				return
			}
			if s.Example == nil {
				t.Fatalf("%s has no example", o.Key)
			}
			before := clone(base)
			for k, v := range beside[o.Key] {
				set(t, before, k, v)
			}
			after := clone(before)
			set(t, after, o.Key, s.Example)
			// Without the key the config may be refused (a one-of
			// key, a setting that needs this one): the key then
			// makes the difference between a refusal and a system.
			was, werr := eval(before)
			is, err := eval(after)
			if err != nil {
				t.Fatalf("%s = %s: %v", o.Key, lang.TOMLValue(s.Example), err)
			}
			if werr == nil && was == is {
				t.Errorf("%s = %s changes nothing: the stdlib does not read it", o.Key, lang.TOMLValue(s.Example))
			}
		})
	}
}

func readTOML(t *testing.T, p string) map[string]any {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(p, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// clone copies TOML data deeply.
func clone(v map[string]any) map[string]any { return cloneValue(v).(map[string]any) }

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case []map[string]any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = cloneValue(e)
		}
		return a
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = cloneValue(e)
		}
		return a
	}
	return v
}

// set sets a declared key in data: <name> is the first name of that
// table, [] the first element; a nil value removes the key. Tables on
// the way are made.
func set(t *testing.T, data map[string]any, declared string, v any) {
	t.Helper()
	segs, err := lang.SplitKeyPath(declared)
	if err != nil {
		t.Fatal(err)
	}
	cur := data
	for i, seg := range segs[:len(segs)-1] {
		next := segs[i+1]
		if strings.HasPrefix(seg, "[") {
			continue
		}
		sub := cur[seg]
		if strings.HasPrefix(next, "<") {
			m, _ := sub.(map[string]any)
			if len(m) == 0 {
				t.Fatalf("%s: the base config has no %s", declared, lang.KeyPath(segs[:i+1]...))
			}
			// The first entry that has the key below, else the first.
			names := make([]string, 0, len(m))
			for k := range m {
				names = append(names, k)
			}
			sort.Strings(names)
			first := names[0]
			if i+2 < len(segs)-1 {
				for _, k := range names {
					if e, ok := m[k].(map[string]any); ok && e[segs[i+2]] != nil {
						first = k
						break
					}
				}
			}
			segs[i+1] = first
			cur = m
			continue
		}
		if strings.HasPrefix(next, "[") {
			a, _ := sub.([]any)
			if len(a) == 0 {
				t.Fatalf("%s: the base config has no %s", declared, seg)
			}
			cur = a[0].(map[string]any)
			continue
		}
		m, ok := sub.(map[string]any)
		if !ok {
			m = map[string]any{}
			cur[seg] = m
		}
		cur = m
	}
	last := segs[len(segs)-1]
	if v == nil {
		delete(cur, last)
		return
	}
	cur[last] = cloneValue(v)
}
