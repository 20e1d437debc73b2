package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/storepath"
)

// nexis store: its queries and roots here; adding, transfer and upkeep
// in the store_*.go files.
var storeCmd = &cobra.Command{Use: "store"}

var storeFlags struct {
	recursive, size, prefix bool
}

func init() {
	storeCmd.PersistentFlags().StringVar(&here.Dedup, "dedup", "auto", "how identical files are shared: `MODE` auto, reflink, hardlink, copy or none")
	register(rootCmd, storeCmd)
	info := command("info", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return show(host.Query(here, (*store.Store).Info))
	})
	ls := command("ls PATH[/SUBDIR]", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.List(args[0], storeFlags.recursive))
	})
	ls.Flags().BoolVarP(&storeFlags.recursive, "recursive", "R", false, "list everything below, not only the directory's entries")
	cat := command("cat PATH/FILE", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return here.Cat(args[0], os.Stdout)
	})
	pathInfo := command("path-info PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.PathInfo(args, storeFlags.recursive, storeFlags.size))
	})
	pathInfo.Flags().BoolVarP(&storeFlags.recursive, "recursive", "r", false, "include the closure")
	pathInfo.Flags().BoolVarP(&storeFlags.size, "size", "s", false, "print sizes")
	refs := command("refs PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).References))
	})
	referrers := command("referrers PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).Referrers))
	})
	why := command("why-depends A B", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, whyDepends))
	})
	alive := command("why-alive PATH", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, func(s *store.Store, ps []storepath.Path) (*gc.Liveness, error) {
			return gc.WhyAlive(s, ps[0])
		}))
	})
	roots := command("roots", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return show(host.Query(here, (*store.Store).ListRoots))
	})
	for _, c := range []*cobra.Command{info, ls, pathInfo, refs, referrers, why, alive, roots} {
		jsonFlag(c, "print JSON")
	}
	addRoot := command("add-root NAME PATH", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return here.Update(func(s *store.Store) error {
			ps, err := host.ValidPaths(s, args[1:])
			if err != nil {
				return err
			}
			return s.AddRoot(args[0], ps[0])
		})
	})
	removeRoot := command("remove-root NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return here.Update(func(s *store.Store) error {
			if !storeFlags.prefix {
				return s.RemoveRoot(args[0])
			}
			n, err := s.RemoveRootsWithPrefix(args[0])
			if err == nil {
				fmt.Fprintf(os.Stderr, "dropped %d root(s)\n", n)
			}
			return err
		})
	})
	removeRoot.Flags().BoolVar(&storeFlags.prefix, "prefix", false, "drop every root whose name starts with NAME")
	register(storeCmd, info, ls, cat, pathInfo, refs, referrers, why, alive, roots, addRoot, removeRoot)
}

func whyDepends(s *store.Store, ps []storepath.Path) (*store.Dependence, error) {
	d, err := s.ExplainDepends(ps[0], ps[1])
	if err == nil && d == nil {
		err = fmt.Errorf("%s does not depend on %s", s.Logical(ps[0]), s.Logical(ps[1]))
	}
	return d, err
}
