package lang

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	tomlfast "github.com/pelletier/go-toml/v2"
	"github.com/rogpeppe/go-internal/txtar"
)

// TestFastTOMLAgrees: every document the fast decoder accepts decodes
// to what BurntSushi/toml gives, once normalised: every TOML file of the
// repository's configs and tests, and one with every kind of value.
func TestFastTOMLAgrees(t *testing.T) {
	docs := map[string][]byte{"kinds": []byte(`
s = "a\tb\u00e9\"" 
ml = """
x\
  y"""
lit = 'C:\x'
i = -17
hex = 0xff
f = 6.5e-3
inf = inf
b = true
odt = 1979-05-27T07:32:00-08:00
odtz = 1979-05-27T07:32:00.5Z
ldt = 1979-05-27T07:32:00.999
ld = 1979-05-27
lt = 07:32:01.25
arr = [1, "two", [3.0], {k = "v"}]
inline = { a.b = 1, "q k" = 2 }
[t."sub key"]
x = 1
[[aot]]
n = 1
[[aot]]
n = 2
[aot.inner]
m = 3
`)}
	var files []string
	for _, pat := range []string{"../examples/*/*.toml", "../examples/*/*/*.toml", "testdata/*/*.toml", "testdata/*.toml"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f] = b
	}
	cases, _ := filepath.Glob("../golden/testdata/cases/*.txtar")
	for _, c := range cases {
		ar, err := txtar.ParseFile(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range ar.Files {
			if strings.HasSuffix(f.Name, ".toml") {
				docs[c+":"+f.Name] = f.Data
			}
		}
	}
	if len(docs) < 20 {
		t.Fatalf("only %d documents found", len(docs))
	}
	for name, src := range docs {
		var fast, slow map[string]any
		if err := tomlfast.Unmarshal(src, &fast); err != nil {
			if name == "kinds" {
				t.Fatalf("the fast decoder refuses the document of every kind: %v", err)
			}
			continue // decoded by BurntSushi/toml alone
		}
		if _, err := toml.Decode(string(src), &slow); err != nil {
			t.Errorf("%s: the fast decoder accepts what BurntSushi/toml refuses: %v", name, err)
			continue
		}
		if diff := cmp.Diff(normalise(slow), normalise(fast)); diff != "" {
			t.Errorf("%s decodes differently (-BurntSushi +fast):\n%s", name, diff)
		}
	}
}
