package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

// Dynamic shell completion (bash, zsh, fish through cobra's
// `nexis completion SHELL`): *.toml for a CONFIG argument, generation
// numbers, package names for -A, store paths, and the config's caches
// for copy --to. Completion reads: the profile links, the config; it
// never opens the store's database nor builds.

func registerCompletions(root *cobra.Command) {
	for _, c := range allCommands(root) {
		path := strings.TrimPrefix(c.CommandPath(), "nexis ")
		switch {
		case path == "option":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) == 0 {
					return optionKeys(), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
				}
				return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
			}
		case strings.Contains(c.Use, "[CONFIG]"):
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
			}
		case strings.Contains(c.Use, "PATH") || path == "store why-depends":
			// Store paths as the store names them (under --root), level
			// by level of its buckets; anything else (an out-link) is
			// the shell's file completion.
			c.ValidArgsFunction = storePaths
		case strings.HasPrefix(path, "generations ") && path != "generations list":
			c.ValidArgsFunction = generationNumbers
		}
		if f := c.Flags().Lookup("attr"); f != nil && f.Shorthand == "A" {
			_ = c.RegisterFlagCompletionFunc("attr", configPackages)
		}
		if c.Flags().Lookup("generation") != nil {
			_ = c.RegisterFlagCompletionFunc("generation", generationNumbers)
		}
		if path == "copy" {
			_ = c.RegisterFlagCompletionFunc("to", configCaches)
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
		out = append(out, cobra.CompletionWithDesc(o.Key, o.Summary()))
	}
	return out
}

func generationNumbers(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var out []cobra.Completion
	for _, c := range here.GenerationNames() {
		out = append(out, cobra.CompletionWithDesc(c.Word, c.About))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// configPackages are the package names of the config args name (or
// the system's), for -A: evaluated without building anything.
func configPackages(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	sys, err := evaluateQuiet(args)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return sys.PackageNames(), cobra.ShellCompDirectiveNoFileComp
}

// configCaches are the system config's substituters, for copy --to.
func configCaches(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	cfg, err := lang.LoadConfig(here.ConfigPath(nil))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return cfg.Substituters().URLs, cobra.ShellCompDirectiveNoFileComp
}

func storePaths(_ *cobra.Command, _ []string, typed string) ([]cobra.Completion, cobra.ShellCompDirective) {
	words, dirs, ok := here.CompleteStorePath(typed)
	switch {
	case !ok:
		return nil, cobra.ShellCompDirectiveDefault
	case dirs:
		return words, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	return words, cobra.ShellCompDirectiveNoFileComp
}
