package source_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/lang/source"
)

// The stdlib and the examples are formatted and lint-clean: CI runs
// this, so `nexis fmt --check` and `nexis lint` pass on what we ship.
func TestShippedSourcesAreFormattedAndClean(t *testing.T) {
	var files []string
	for _, root := range []string{"../../stdlib", "../../examples"} {
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if ext := filepath.Ext(p); (ext == ".star" || ext == ".toml") && d.Name() != "nexis.lock" {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := source.Format(p, src)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if !bytes.Equal(out, src) {
			t.Errorf("%s is not formatted: run nexis fmt %s", p, p)
		}
		again, err := source.Format(p, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Errorf("%s: formatting twice differs from once (%v)", p, err)
		}
		if strings.HasSuffix(p, ".star") {
			found, err := source.LintStar(p, src)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range found {
				t.Errorf("%s", f)
			}
		}
	}
}
