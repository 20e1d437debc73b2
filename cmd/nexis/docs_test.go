package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/nexisos/nexis/internal/docgen"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/lang/source"
)

var updateDocs = flag.Bool("update", false, "rewrite the generated docs (go generate ./cmd/nexis)")

// manDate is the date in the man pages' headers: a date that moved
// with the clock would make every page stale every month.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// The reference pages generated from the code are checked in; this
// fails when one is stale, and -update (go generate ./cmd/nexis)
// rewrites them: docs/options.md and nexis-config(5) from the schema,
// nexis(1) and a page per verb from the commands.
func TestReferenceDocs(t *testing.T) {
	gen := t.TempDir()
	man := filepath.Join(gen, "man")
	if err := os.MkdirAll(man, 0o755); err != nil {
		t.Fatal(err)
	}
	// Defaults the environment may change are documented as built in.
	for name, def := range map[string]string{"root": "/", "store": "/store", "state": "/var/lib/nexis"} {
		rootCmd.PersistentFlags().Lookup(name).DefValue = def
	}
	rootCmd.DisableAutoGenTag = true
	// Man pages are made from markdown, where <name> reads as HTML.
	var escape func(c *cobra.Command)
	escape = func(c *cobra.Command) {
		c.Long = strings.ReplaceAll(c.Long, "<", `\<`)
		for _, sub := range c.Commands() {
			escape(sub)
		}
	}
	escape(rootCmd)
	hdr := &doc.GenManHeader{Section: "1", Date: &manDate, Source: "nexis", Manual: "nexis manual"}
	if err := doc.GenManTree(rootCmd, hdr, man); err != nil {
		t.Fatal(err)
	}
	write := func(rel string, b []byte) {
		if err := os.WriteFile(filepath.Join(gen, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("options.md", docgen.OptionsMarkdown(lang.ConfigSchema))
	write("builtins.md", docgen.BuiltinsMarkdown(lang.BuiltinDocs(), source.StdlibDocs()))
	write("man/nexis-config.5", docgen.ConfigManPage(lang.ConfigSchema))

	docs := filepath.Join("..", "..", "docs")
	if *updateDocs {
		for _, old := range []string{"man", "options.md", "builtins.md"} {
			if err := os.RemoveAll(filepath.Join(docs, old)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.CopyFS(docs, os.DirFS(gen)); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := filepath.Glob(filepath.Join(gen, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(man, "*"))
	have, _ := filepath.Glob(filepath.Join(docs, "man", "*"))
	if len(pages) != len(have) {
		t.Errorf("docs/man has %d pages and the commands make %d: run go generate ./cmd/nexis", len(have), len(pages))
	}
	for _, p := range append(want, pages...) {
		rel, _ := filepath.Rel(gen, p)
		made, _ := os.ReadFile(p)
		in, err := os.ReadFile(filepath.Join(docs, rel))
		if err != nil || !bytes.Equal(made, in) {
			t.Errorf("docs/%s is stale: run go generate ./cmd/nexis", rel)
		}
	}
}
