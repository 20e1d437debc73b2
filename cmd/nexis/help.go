package main

import (
	"embed"
	"strings"

	"github.com/spf13/cobra"
)

// Every command's help lives in help/<path>.txt, its command path with
// dashes (help/store-add.txt for nexis store add, help/nexis.txt for
// nexis itself): the first line is its Short, what follows a blank line
// its Long. The man pages are generated from them (go generate).
//
//go:embed help
var helpFiles embed.FS

// register adds cmds to parent, each with its help.
func register(parent *cobra.Command, cmds ...*cobra.Command) {
	parent.AddCommand(cmds...)
	for _, c := range cmds {
		describe(c)
	}
}

// describe gives c the Short and Long of its help file. The files are
// part of the binary: one missing is a mistake of this source tree
// (TestHelpFiles names it), so the command is left without help rather
// than nexis failing to start.
func describe(c *cobra.Command) *cobra.Command {
	name := strings.ReplaceAll(strings.TrimPrefix(c.CommandPath(), "nexis "), " ", "-")
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		return c
	}
	text := strings.TrimSuffix(string(b), "\n")
	c.Short, c.Long, _ = strings.Cut(text, "\n")
	c.Long = strings.TrimPrefix(c.Long, "\n")
	return c
}

// command is a verb: its usage line, the arguments it takes (nil: any)
// and what it runs.
func command(use string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Args: usageArgs(args), RunE: run}
}
