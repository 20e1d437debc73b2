package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
)

var storeRootsFlags struct{ json bool }

func init() {
	roots := &cobra.Command{
		Use:  "roots",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := here.OpenStoreRead()
			if err != nil {
				return err
			}
			defer s.Close()
			rs, err := s.ListRoots()
			if err != nil {
				return err
			}
			if storeRootsFlags.json {
				return printJSON(rs)
			}
			for _, r := range rs {
				r.Print(os.Stdout)
			}
			return nil
		},
	}
	roots.Flags().BoolVar(&storeRootsFlags.json, "json", false, "print JSON")
	add := &cobra.Command{
		Use:  "add-root NAME PATH",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			ps, err := host.ValidPaths(s, args[1:])
			if err != nil {
				return err
			}
			if err := s.AddRoot(args[0], ps[0]); err != nil {
				return err
			}
			return s.Close()
		},
	}
	var prefix bool
	remove := &cobra.Command{
		Use:  "remove-root NAME",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			if prefix {
				n, err := s.RemoveRootsWithPrefix(args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "dropped %d root(s)\n", n)
			} else if err := s.RemoveRoot(args[0]); err != nil {
				return err
			}
			return s.Close()
		},
	}
	remove.Flags().BoolVar(&prefix, "prefix", false, "drop every root whose name starts with NAME")
	register(storeCmd, roots, add, remove)
}
