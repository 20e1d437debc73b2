// Package golden holds the golden-file tests of evaluation. Every
// directory under examples/ evaluates to testdata/examples/<name>.golden
// (the closure tree and every generated file), and every case under
// testdata/cases is one txtar file: the input files, then a "want" section
// with the expected output or a "want-error" section with the expected
// error as nexis prints it. `go test ./golden -update` rewrites the
// expectations; review them in the diff like code.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/nexisos/nexis/lang"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// render evaluates a config the way `nexis eval --files` prints it, or the
// error the way nexis reports it. dir is replaced by $WORK so output never
// depends on where the test runs.
func render(config, dir string) (string, bool) {
	// A smaller step budget than the default keeps the runaway case quick.
	sys, err := lang.Eval(config, lang.Options{MaxSteps: 20_000_000})
	if err != nil {
		return strings.ReplaceAll(lang.FormatError(err, false), dir, "$WORK"), false
	}
	var b bytes.Buffer
	if err := lang.WriteTree(&b, sys.Drv); err != nil {
		return "write: " + err.Error(), false
	}
	if err := lang.WriteFiles(&b, sys.Drv); err != nil {
		return "write: " + err.Error(), false
	}
	return strings.ReplaceAll(b.String(), dir, "$WORK"), true
}

func TestExamples(t *testing.T) {
	configs, err := filepath.Glob("../examples/*/config.toml")
	if err != nil || len(configs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, config := range configs {
		name := filepath.Base(filepath.Dir(config))
		t.Run(name, func(t *testing.T) {
			abs, _ := filepath.Abs(filepath.Dir(config))
			got, ok := render(config, abs)
			if !ok {
				t.Fatalf("example %s does not evaluate:\n%s", name, got)
			}
			check(t, filepath.Join("testdata/examples", name+".golden"), got)
		})
	}
}

func check(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run `go test ./golden -update` to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; `go test ./golden -update` accepts the new output):\n%s", file, diff)
	}
}

func TestCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases found: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" || f.Name == "want-error" {
					wantIdx = i
					continue
				}
				p := filepath.Join(dir, filepath.FromSlash(f.Name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := render(filepath.Join(dir, "config.toml"), dir)
			section := "want"
			if !ok {
				section = "want-error"
			}
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx] = txtar.File{Name: section, Data: []byte(got)}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("%s has no want or want-error section (run with -update)", file)
			}
			want := ar.Files[wantIdx]
			if want.Name != section {
				t.Fatalf("%s expects %s, but evaluation gave %s:\n%s", file, want.Name, section, got)
			}
			if diff := cmp.Diff(string(want.Data), got); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", file, diff)
			}
		})
	}
}
