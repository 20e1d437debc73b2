package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
)

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
