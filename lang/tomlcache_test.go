package lang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/store/treehash"
)

// TestEntryDigestsAreTheEntries: the digest of each package entry the
// TOML cache gives packageKey, for a part decoded now and for one read
// back, is that of the entry's own encoding, which packageKey computes
// for an entry not decoded in parts; entries holding tables and arrays
// of tables (which the config normalises) included.
func TestEntryDigestsAreTheEntries(t *testing.T) {
	config := warmConfig(t, 1500)
	text, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, "[[packages]]\nname = \"nested\"\n[packages.args]\nx = 1\n[[packages.args.list]]\ny = \"a\"\n[[packages.args.list]]\ny = \"b\"\n"...)
	if err := os.WriteFile(config, text, 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "parts.toml")
	for _, state := range []string{"cold", "warm"} {
		tc := openTOMLCache(file)
		cfg, err := loadConfig(config, nil, DefaultMaxDepth, tc)
		if err != nil {
			t.Fatal(err)
		}
		pkgs, _ := cfg.data["packages"].([]any)
		if len(pkgs) != 1501 {
			t.Fatalf("%s: %d packages", state, len(pkgs))
		}
		for i, p := range pkgs {
			e := p.(map[string]any)
			got, ok := tc.entryDigest(e)
			enc, _ := encodeValue(nil, e)
			if !ok || got != treehash.Sum(enc) {
				t.Fatalf("%s: package %d (%v): digest kept %v, its own", state, i, e["name"], ok)
			}
		}
		if state == "warm" && tc.decoded != 0 {
			t.Fatalf("warm: %d parts decoded again", tc.decoded)
		}
		tc.write()
	}
}

// TestBoxedStrings: a string the TOML cache boxes in a slab is the value
// any(s) is, to comparisons, type switches and maps.
func TestBoxedStrings(t *testing.T) {
	var d valueDecoder
	for _, s := range []string{"", "a", "pkg1", strings.Repeat("x", 300)} {
		for range 200 { // past one slab
			v := d.box(s)
			if x, ok := v.(string); !ok || x != s || v != any(s) {
				t.Fatalf("box(%q) = %#v", s, v)
			}
			if m := map[any]bool{any(s): true}; !m[v] {
				t.Fatalf("box(%q) is not the key any(%q)", s, s)
			}
		}
	}
}
