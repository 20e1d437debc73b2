package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/store/storepath"
)

// Dynamic shell completion (bash, zsh, fish through cobra's
// `nexis completion SHELL`): *.toml for a CONFIG argument, generation
// numbers, package names for -A, store paths, and the config's caches
// for copy --to.
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
		case strings.Contains(c.Use, "PATH") || path == "store why-depends":
			// Store paths as the store names them (under --root), level
			// by level of its buckets; anything else (an out-link) is
			// the shell's file completion.
			c.ValidArgsFunction = func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return storePaths(toComplete)
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
		out = append(out, cobra.CompletionWithDesc(o.Key, o.Summary()))
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

// storePaths completes a store path being typed (the store directory
// and then its bucket levels, <store>/ab/cd/abcd...-name) from the
// directories of the store under --root: one directory read per level.
func storePaths(toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	logical := here.StoreDir()
	if !strings.HasPrefix(toComplete, logical+"/") {
		if strings.HasPrefix(logical+"/", toComplete) && toComplete != "" {
			return []cobra.Completion{logical + "/"}, cobra.ShellCompDirectiveNoSpace
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
	phys, err := here.PhysicalStoreDir()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	rest := strings.TrimPrefix(toComplete, logical+"/")
	levels := strings.Split(rest, "/")
	if len(levels) > 3 {
		return nil, cobra.ShellCompDirectiveDefault // inside a path: the shell's files
	}
	typed := levels[len(levels)-1]
	parent := levels[:len(levels)-1]
	ents, err := os.ReadDir(filepath.Join(append([]string{phys}, parent...)...))
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, typed) {
			continue
		}
		if len(parent) < 2 {
			if !storepath.IsBucket(n) {
				continue
			}
			n += "/"
		}
		out = append(out, logical+"/"+strings.Join(append(append([]string(nil), parent...), n), "/"))
	}
	if len(parent) < 2 {
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
