package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rogpeppe/go-internal/txtar"
)

// Every ```sh block of README.md runs as pasted, with bash -e from the
// repository's top, and must succeed: the blocks work in a scratch
// root, so running them here changes nothing but temp directories.
// A block that cannot run in a test (other machines, the network) says
// why in an HTML comment on the line above it.
func TestReadmeBlocks(t *testing.T) {
	top, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(top, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, skipped := shellBlocks(string(readme))
	if len(blocks) < 2 {
		t.Fatalf("README.md has %d runnable blocks", len(blocks))
	}
	t.Logf("%d blocks run, %d say why they cannot", len(blocks), skipped)
	dir := t.TempDir()
	for i, b := range blocks {
		ar := &txtar.Archive{
			Comment: []byte(fmt.Sprintf("# README.md block %d\nexec bash -e block.sh\n", i+1)),
			Files:   []txtar.File{{Name: "block.sh", Data: []byte("cd " + top + "\n" + b)}},
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("block%d.txtar", i+1)), txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// The blocks set their own scratch root; this one is
			// where anything that forgot to would land.
			env.Setenv("NEXIS_ROOT", filepath.Join(env.WorkDir, "root"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("NEXIS_STDENV", os.Getenv("NEXIS_STDENV"))
			return nil
		},
	})
}

// shellBlocks returns the ```sh blocks of a markdown text, but those
// after a "<!-- README test: not run: ... -->" line, which it counts.
func shellBlocks(md string) (blocks []string, skipped int) {
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			b.WriteString(lines[j] + "\n")
		}
		if i > 0 && strings.HasPrefix(lines[i-1], "<!-- README test: not run:") {
			skipped++
		} else {
			blocks = append(blocks, b.String())
		}
		i = j
	}
	return blocks, skipped
}
