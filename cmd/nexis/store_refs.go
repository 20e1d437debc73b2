package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

var relFlags struct{ json bool }

func init() {
	refs := &cobra.Command{
		Use:  "refs PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listRelation(args, (*store.Store).References)
		},
	}
	referrers := &cobra.Command{
		Use:  "referrers PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return listRelation(args, (*store.Store).Referrers)
		},
	}
	why := &cobra.Command{
		Use:  "why-depends A B",
		Args: cobra.ExactArgs(2),
		RunE: runWhyDepends,
	}
	for _, c := range []*cobra.Command{refs, referrers, why} {
		c.Flags().BoolVar(&relFlags.json, "json", false, "print JSON")
	}
	register(storeCmd, refs, referrers, why)
}

func listRelation(args []string, rel func(*store.Store, storepath.Path) ([]storepath.Path, error)) error {
	s, paths, err := here.OpenStorePaths(args)
	if err != nil {
		return err
	}
	defer s.Close()
	// --json: each path named, with the paths it relates to.
	byPath := map[string][]string{}
	for _, p := range paths {
		rs, err := rel(s, p)
		if err != nil {
			return err
		}
		related := []string{}
		for _, r := range rs {
			related = append(related, s.Logical(r))
		}
		if relFlags.json {
			byPath[s.Logical(p)] = related
			continue
		}
		for _, r := range related {
			fmt.Println(r)
		}
	}
	if relFlags.json {
		return printJSON(byPath)
	}
	return nil
}

func runWhyDepends(cmd *cobra.Command, args []string) error {
	s, ps, err := here.OpenStorePaths(args)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := s.ExplainDepends(ps[0], ps[1])
	if err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("%s does not depend on %s", s.Logical(ps[0]), s.Logical(ps[1]))
	}
	if relFlags.json {
		return printJSON(d)
	}
	d.Print(os.Stdout)
	return nil
}
