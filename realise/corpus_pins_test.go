package realise_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// corpusDir holds the corpus's config and its pinned sources
// (realise/corpus_test.go builds it; scripts/fetch-corpus fetches them).
const corpusDir = "testdata/corpus"

// corpusPin is one release tarball of the corpus: the Debian source
// package it comes from, the .orig file and its sha256.
type corpusPin struct {
	Package, File, SHA256 string
}

func readCorpusPins(t testing.TB) []corpusPin {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "sources"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pins []corpusPin
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 || len(fs[2]) != 64 {
			t.Fatalf("%s/sources:%d: want \"package file sha256\", got %q", corpusDir, n, line)
		}
		pins = append(pins, corpusPin{fs[0], fs[1], fs[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pins
}

// The corpus config names each pinned tarball with its pinned hash, and
// nothing else from the server: the pins scripts/fetch-corpus checks are
// the hashes the builds check.
func TestCorpusPinsMatchConfig(t *testing.T) {
	var cfg struct {
		Packages []struct {
			Name, Source, Hash string
		}
	}
	if _, err := toml.DecodeFile(filepath.Join(corpusDir, "config.toml"), &cfg); err != nil {
		t.Fatal(err)
	}
	pinned := map[string]string{}
	for _, p := range readCorpusPins(t) {
		pinned[p.File] = "sha256:" + p.SHA256
	}
	used := map[string]bool{}
	for _, p := range cfg.Packages {
		file, ok := strings.CutPrefix(p.Source, "@URL@/")
		if !ok {
			continue
		}
		want, ok := pinned[file]
		switch {
		case !ok:
			t.Errorf("package %s: %s is not pinned in %s/sources", p.Name, file, corpusDir)
		case p.Hash != want:
			t.Errorf("package %s: hash %s, and %s/sources pins %s", p.Name, p.Hash, corpusDir, want)
		}
		used[file] = true
	}
	for file := range pinned {
		if !used[file] {
			t.Errorf("%s is pinned and no package builds it", file)
		}
	}
}
