package main

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command has its help file, and every help file its command.
func TestHelpFiles(t *testing.T) {
	files, err := fs.Glob(helpFiles, "help/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	unused := map[string]bool{}
	for _, f := range files {
		unused[f] = true
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		name := "help/" + strings.ReplaceAll(strings.TrimPrefix(c.CommandPath(), "nexis "), " ", "-") + ".txt"
		delete(unused, name)
		if c.Short == "" {
			t.Errorf("%s has no help: write %s", c.CommandPath(), name)
		}
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(rootCmd)
	for f := range unused {
		t.Errorf("%s names no command", f)
	}
}
