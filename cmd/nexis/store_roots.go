package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
)

func init() {
	roots := &cobra.Command{
		Use:  "roots",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return showEach(host.Query(here, (*store.Store).ListRoots))
		},
	}
	jsonFlag(roots, "print JSON")
	add := &cobra.Command{
		Use:  "add-root NAME PATH",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return here.Update(func(s *store.Store) error {
				ps, err := host.ValidPaths(s, args[1:])
				if err != nil {
					return err
				}
				return s.AddRoot(args[0], ps[0])
			})
		},
	}
	var prefix bool
	remove := &cobra.Command{
		Use:  "remove-root NAME",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
		},
	}
	remove.Flags().BoolVar(&prefix, "prefix", false, "drop every root whose name starts with NAME")
	register(storeCmd, roots, add, remove)
}
