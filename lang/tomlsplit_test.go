package lang

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// bigConfig is a config of n packages with what a cut could get wrong:
// multi-line strings and TOML 1.1 multi-line inline tables holding
// header-like lines, nested arrays at the start of a line, tables and
// arrays of tables inside packages, comments and CRLF line ends.
func bigConfig(n int, tail string) string {
	var b strings.Builder
	b.WriteString("# a config\n[system]\nhostname = \"big\"\n\n[users.root]\nshell = \"/bin/sh\"\n\n")
	for i := range n {
		fmt.Fprintf(&b, "[[packages]]\nname = \"pkg%d\"\nversion = \"1.%d\"\n", i, i)
		switch i % 5 {
		case 0:
			b.WriteString("build_flags = [\n  \"--a\",\n  \"--b\", # [[packages]]\n]\n")
		case 1:
			b.WriteString("env = {\n  FOO = \"\"\"\n[[packages]]\nname = \"not\"\n\"\"\",\n  BAR = '''\n[x]'''\n}\n")
		case 2:
			b.WriteString("module = \"m.star\"\n[packages.args]\nn = [\n[1, 2],\n[3]\n]\n")
		case 3:
			b.WriteString("runtime_dirs = ['/run/x', \"/run/\\\"y\"]\r\n[[packages.more]]\nk = 1\r\n")
		case 4:
			b.WriteString("args = { a = { b = 1,\n c = \"}\" },\n}\n")
		}
		b.WriteString("\n")
	}
	b.WriteString(tail)
	return b.String()
}

// TestSplitDecodeAgrees: a document decoded in parts decodes to what it
// decodes to whole, and one that cannot be cut safely, or does not
// decode, gives what decoding it whole gives.
func TestSplitDecodeAgrees(t *testing.T) {
	for _, tc := range []struct {
		name, tail string
		cut        bool
	}{
		{"packages only after the first", "", true},
		{"another table after the packages", "[network]\ndhcp = true\n", false},
		{"a syntax error in a package", "[[packages]]\nname = \n", true},
		{"a duplicate key in a package", "[[packages]]\nname = \"a\"\nname = \"b\"\n", true},
	} {
		src := []byte(bigConfig(4000, tc.tail))
		cuts := packageCuts(src)
		if (cuts != nil) != tc.cut {
			t.Fatalf("%s: cuts %v, want cut %v", tc.name, cuts, tc.cut)
		}
		var whole map[string]any
		_, wantErr := toml.Decode(string(src), &whole)
		// Parts are decoded as they are cut, before the shape of the
		// whole is known: those of a document decoded whole are not
		// kept.
		c := openTOMLCache(filepath.Join(t.TempDir(), "c.toml"))
		got, err := decodeTOML(src, c)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s: error %v, want %v", tc.name, err, wantErr)
		}
		if kept := c.decoded > 0; kept != (tc.cut && err == nil) {
			t.Fatalf("%s: %d parts kept", tc.name, c.decoded)
		}
		// normalise, below, changes got in place.
		if list, ok := got["packages"].(normalTables); ok != (tc.cut && err == nil) || ok && !entriesNormal(list) {
			t.Fatalf("%s: the packages are %T, or not normalised", tc.name, got["packages"])
		}
		if diff := cmp.Diff(normalise(whole), normalise(got)); err == nil && diff != "" {
			t.Fatalf("%s: decoded in parts differs (-whole +parts):\n%s", tc.name, diff)
		}
	}
	// A part that is not kept (a date cannot be) is normalised too.
	src := []byte(strings.Replace(bigConfig(4000, ""), "version = \"1.7\"\n", "version = \"1.7\"\nreleased = 1979-05-27T07:32:00Z\n", 1))
	got, err := decodeTOML(src, openTOMLCache(filepath.Join(t.TempDir(), "c.toml")))
	if list, ok := got["packages"].(normalTables); err != nil || !ok || !entriesNormal(list) {
		t.Fatalf("with a date: %v; the packages are %T, or not normalised", err, got["packages"])
	}
	// A packages key before the first [[packages]] is the document's
	// error, not a merge.
	src = []byte("packages = []\n" + bigConfig(4000, ""))
	if _, err := decodeTOML(src, nil); err == nil {
		t.Fatal("a static packages array followed by [[packages]] decoded")
	}
}

// TestMultilineInlineTable: TOML 1.1 inline tables that span lines, with
// a trailing comma, keep working in configs.
func TestMultilineInlineTable(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"config.toml": "[system]\nhostname = \"inline\"\n\n[[packages]]\nname = \"a\"\nmodule = \"a.star\"\nargs = {\n  greeting = \"hi\",\n  more = { n = 1,\n    m = 2 },\n}\n",
		"a.star":      "def package(greeting, more):\n    return write_file(name = \"a\", content = greeting + str(more[\"m\"]))\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sys, err := Eval(filepath.Join(dir, "config.toml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := sys.Packages.Get(starlark.String("a"))
	if d, ok := v.(*builtins.Derivation); !ok || d.Getenv("content") != "hi2" {
		t.Fatalf("package a: %v", v)
	}
}

// TestTOMLCache: parts come from the cache when their text is unchanged,
// decode to the same values, and an edit decodes one part again; a
// damaged cache file is ignored.
func TestTOMLCache(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	src := []byte(bigConfig(4000, ""))
	var whole map[string]any
	if _, err := toml.Decode(string(src), &whole); err != nil {
		t.Fatal(err)
	}
	decode := func(src []byte) (map[string]any, *tomlCache) {
		c := openTOMLCache(file)
		got, err := decodeTOML(src, c)
		if err != nil {
			t.Fatal(err)
		}
		c.write()
		return got, c
	}
	for i, want := range []int{len(packageCuts(src)) + 1, 0} {
		got, c := decode(src)
		if list, ok := got["packages"].(normalTables); !ok || !entriesNormal(list) {
			t.Fatalf("run %d: the packages are %T, or not normalised", i, got["packages"])
		}
		if diff := cmp.Diff(normalise(whole), normalise(got)); diff != "" {
			t.Fatalf("run %d differs (-whole +cached):\n%s", i, diff)
		}
		if c.decoded != want {
			t.Fatalf("run %d decoded %d parts, want %d", i, c.decoded, want)
		}
	}
	edited := []byte(strings.Replace(string(src), `name = "pkg2500"`, `name = "pkg2500x"`, 1))
	if _, c := decode(edited); c.decoded != 1 {
		t.Fatalf("after one edit %d parts were decoded, want 1", c.decoded)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, c := decode(src); c.decoded == 0 || cmp.Diff(normalise(whole), normalise(got)) != "" {
		t.Fatalf("a damaged cache was used (%d parts decoded)", c.decoded)
	}
}

// TestSplitNestingCheck: a large document is checked for depth part by
// part, parts from the cache not again, and a part nested too deep gives
// the error (file, line, column) that checking the whole document gives,
// with the cache cold or warm; the same document within the limit
// decodes as before.
func TestSplitNestingCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.toml")
	src := bigConfig(4000, "")
	deep := strings.Replace(src, "name = \"pkg2500\"\n", "name = \"pkg2500\"\ndeep = [[[[[[[1]]]]]]]\n", 1)
	check := func(max int) func([]byte) error {
		return func(text []byte) error { return checkNesting("config.toml", text, max) }
	}
	want := checkNesting("config.toml", []byte(deep), 8)
	if want == nil {
		t.Fatal("the deep document passes the whole check")
	}
	if cuts := packageCuts([]byte(deep)); cuts == nil {
		t.Fatal("the deep document is not cut")
	}
	for run := range 2 {
		c := openTOMLCache(file)
		if _, err := decodeChecked([]byte(src), check(8), c); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		_, err := decodeChecked([]byte(deep), check(8), c)
		if fmt.Sprint(err) != fmt.Sprint(want) {
			t.Fatalf("run %d: error %v, want %v", run, err, want)
		}
		c.write()
	}
	if _, err := decodeChecked([]byte(deep), check(10), nil); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
}

// TestTOMLCacheAfterLoad: the cache is written from the config as
// loaded (merged and normalised: nested arrays of tables made []any,
// dates strings), as eval writes it; a config read back from it is the
// config decoded whole, and a part holding a date is decoded again.
func TestTOMLCacheAfterLoad(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config.toml")
	src := bigConfig(3000, "") + "[[packages]]\nname = \"dated\"\nwhen = 1979-05-27T07:32:00Z\n"
	if err := os.WriteFile(config, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := loadConfig(config, nil, DefaultMaxDepth, nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cache", "c.toml")
	// Every part but the dated one is kept, then read back.
	kept := len(packageCuts([]byte(src)))
	for run := range 2 {
		c := openTOMLCache(file)
		got, err := loadConfig(config, nil, DefaultMaxDepth, c)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.data, got.data); diff != "" {
			t.Fatalf("run %d differs (-uncached +cached):\n%s", run, diff)
		}
		if n := c.decoded + len(c.now); n != kept {
			t.Fatalf("run %d kept %d parts, want %d", run, n, kept)
		}
		if run == 1 && c.decoded != 0 {
			t.Fatalf("run 1 decoded %d parts again, want only the dated one", c.decoded)
		}
		c.write()
	}
}

// TestHeadersAsByteByByte: the header scan, which jumps to the next byte
// that matters, finds the headers (and the unended strings) that
// looking at every byte finds, in documents made of random pieces.
func TestHeadersAsByteByByte(t *testing.T) {
	pieces := []string{
		"[[packages]]\n", "\r[[packages]]\n", "[packages.args]\n", "  [x]\n", "\t[[ y ]]\r\n", "a = [\n", "[1, [2]]", "]\n", "{", "}", "b = {c = 1}\n",
		"\"s\"", "\"e\\\"[q]\"", "\"\\\\\"", "\"\\\n[x]\"", "'l\\'", "'''m\n[x]'''", "\"\"\"n\\\"\"\"[x]\n\"\"\"", "''''''",
		"# [c] \"\n", "#", "x", " = ", "\n", "\r\n", " ", "\"unended\n", "'", "\"", "\\",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 20000 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		src := []byte(b.String())
		got, gotBad := scanHeaders(src)
		want, wantBad := headersByteByByte(src)
		if !slices.Equal(got, want) || gotBad != wantBad {
			t.Fatalf("document %d %q: headers %v (unended %v), want %v (%v)", n, src, got, gotBad, want, wantBad)
		}
	}
}

func scanHeaders(src []byte) ([]int, bool) {
	var offs []int
	s := tomlLines{src: src}
	for {
		off, _, ok := s.nextHeader()
		if !ok {
			return offs, s.bad
		}
		offs = append(offs, off)
	}
}

// headersByteByByte is the header scan as it was written first, one
// byte at a time.
func headersByteByByte(src []byte) ([]int, bool) {
	var offs []int
	i, depth := 0, 0
	skipString := func(q byte) bool {
		triple := []byte{q, q, q}
		if bytes.HasPrefix(src[i:], triple) {
			i += 3
			for i < len(src) {
				if q == '"' && src[i] == '\\' {
					i += 2
					continue
				}
				if bytes.HasPrefix(src[i:], triple) {
					i += 3
					for i < len(src) && src[i] == q {
						i++
					}
					return true
				}
				i++
			}
			return false
		}
		i++
		for i < len(src) && src[i] != '\n' {
			switch src[i] {
			case '\\':
				if q == '"' {
					i += 2
					continue
				}
			case q:
				i++
				return true
			}
			i++
		}
		return false
	}
	lineStart := true
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			lineStart = true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case c == '[' && lineStart && depth == 0:
			offs = append(offs, i)
			end := bytes.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			i += end
			continue
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		case c == '"' || c == '\'':
			if !skipString(c) {
				return offs, true
			}
			lineStart = false
			continue
		}
		lineStart = false
		i++
	}
	return offs, false
}

// entriesNormal says whether the packages are as normalise leaves them:
// merge takes them as they are.
func entriesNormal(list normalTables) bool {
	var normal func(v any) bool
	normal = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				if !normal(e) {
					return false
				}
			}
		case []any:
			for _, e := range x {
				if !normal(e) {
					return false
				}
			}
		case []map[string]any, normalTables, time.Time:
			return false
		}
		return true
	}
	return normal([]any(list))
}
