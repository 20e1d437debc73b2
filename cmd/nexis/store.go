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

var storeCmd = &cobra.Command{Use: "store"}

func init() {
	storeCmd.PersistentFlags().StringVar(&here.Dedup, "dedup", "auto", "how identical files are shared: `MODE` auto, reflink, hardlink, copy or none")
	register(rootCmd, storeCmd)
}

func init() {
	cmd := command("info", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return show(host.Query(here, (*store.Store).Info))
	})
	jsonFlag(cmd, "print JSON")
	register(storeCmd, cmd)
}

var storeLsFlags struct{ recursive bool }

func init() {
	ls := command("ls PATH[/SUBDIR]", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.List(args[0], storeLsFlags.recursive))
	})
	ls.Flags().BoolVarP(&storeLsFlags.recursive, "recursive", "R", false, "list everything below, not only the directory's entries")
	jsonFlag(ls, "print JSON")
	cat := command("cat PATH/FILE", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return here.Cat(args[0], os.Stdout)
	})
	register(storeCmd, ls, cat)
}

var pathInfoFlags struct{ recursive, size bool }

func init() {
	cmd := command("path-info PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.PathInfo(args, pathInfoFlags.recursive, pathInfoFlags.size))
	})
	f := cmd.Flags()
	jsonFlag(cmd, "print JSON")
	f.BoolVarP(&pathInfoFlags.recursive, "recursive", "r", false, "include the closure")
	f.BoolVarP(&pathInfoFlags.size, "size", "s", false, "print sizes")
	register(storeCmd, cmd)
}

func init() {
	refs := command("refs PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).References))
	})
	referrers := command("referrers PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).Referrers))
	})
	why := command("why-depends A B", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, whyDepends))
	})
	for _, c := range []*cobra.Command{refs, referrers, why} {
		jsonFlag(c, "print JSON")
	}
	register(storeCmd, refs, referrers, why)
}

func whyDepends(s *store.Store, ps []storepath.Path) (*store.Dependence, error) {
	d, err := s.ExplainDepends(ps[0], ps[1])
	if err == nil && d == nil {
		err = fmt.Errorf("%s does not depend on %s", s.Logical(ps[0]), s.Logical(ps[1]))
	}
	return d, err
}

func init() {
	cmd := command("why-alive PATH", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, func(s *store.Store, ps []storepath.Path) (*gc.Liveness, error) {
			return gc.WhyAlive(s, ps[0])
		}))
	})
	jsonFlag(cmd, "print JSON")
	register(storeCmd, cmd)
}

func init() {
	roots := command("roots", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return showEach(host.Query(here, (*store.Store).ListRoots))
	})
	jsonFlag(roots, "print JSON")
	add := command("add-root NAME PATH", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return here.Update(func(s *store.Store) error {
			ps, err := host.ValidPaths(s, args[1:])
			if err != nil {
				return err
			}
			return s.AddRoot(args[0], ps[0])
		})
	})
	var prefix bool
	remove := command("remove-root NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return here.Update(func(s *store.Store) error {
			if !prefix {
				return s.RemoveRoot(args[0])
			}
			n, err := s.RemoveRootsWithPrefix(args[0])
			if err == nil {
				fmt.Fprintf(os.Stderr, "dropped %d root(s)\n", n)
			}
			return err
		})
	})
	remove.Flags().BoolVar(&prefix, "prefix", false, "drop every root whose name starts with NAME")
	register(storeCmd, roots, add, remove)
}
