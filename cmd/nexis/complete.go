package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/lang"
)

// Dynamic shell completion (bash, zsh, fish through cobra's
// `nexis completion SHELL`): *.toml for a CONFIG argument, generation
// numbers, package names for -A, and the config's caches for copy --to.
// Completion reads: the profile links, the config; it never opens the
// store's database nor builds.
func registerCompletions(root *cobra.Command) {
	for _, c := range allCommands(root) {
		path := strings.TrimPrefix(c.CommandPath(), "nexis ")
		switch {
		case strings.Contains(c.Use, "[CONFIG]"):
			// Commands whose one argument is a config; option's second.
			if path == "option" {
				c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
					if len(args) == 0 {
						return optionKeys(), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
					}
					return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
				}
				continue
			}
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
			}
		case path == "generations diff" || path == "generations delete" || path == "generations pin" || path == "generations unpin":
			c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return generationNumbers(), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if f := c.Flags().Lookup("attr"); f != nil && c.Flags().Lookup("attr").Shorthand == "A" {
			_ = c.RegisterFlagCompletionFunc("attr", func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return configPackages(args), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("generation") != nil {
			_ = c.RegisterFlagCompletionFunc("generation", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return generationNumbers(), cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("to") != nil && path == "copy" {
			_ = c.RegisterFlagCompletionFunc("to", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return configCaches(), cobra.ShellCompDirectiveNoFileComp
			})
		}
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func optionKeys() []cobra.Completion {
	var out []cobra.Completion
	for _, o := range lang.ConfigSchema.Options() {
		out = append(out, cobra.CompletionWithDesc(o.Key, firstSentence(o.Schema.Doc)))
	}
	return out
}

// generationNumbers are the generations of --root, newest first, and
// the names every generation argument takes.
func generationNumbers() []cobra.Completion {
	r, err := here.OpenRoot()
	if err != nil {
		return nil
	}
	gens, _, err := activate.ProfileGenerations(r, here.StateDir(), here.StoreDir())
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		out = append(out, cobra.CompletionWithDesc(strconv.FormatUint(g.Number, 10), g.Time.Format("2006-01-02 15:04")+" "+g.Path.Base()))
	}
	if len(gens) > 0 {
		out = append(out, cobra.CompletionWithDesc("current", "the current generation"),
			cobra.CompletionWithDesc("previous", "the one before the current (where rollback goes)"))
	}
	return out
}

// configPackages are the package names of the config args name (or
// the system's), for -A: evaluated without building anything.
func configPackages(args []string) []cobra.Completion {
	sys, err := evaluateQuiet(args)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, n := range sys.PackageNames() {
		out = append(out, n)
	}
	return out
}

// configCaches are the system config's substituters, for copy --to.
func configCaches() []cobra.Completion {
	cfg, err := lang.LoadConfig(here.ConfigPath(nil))
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, u := range cfg.Substituters().URLs {
		out = append(out, u)
	}
	return out
}
