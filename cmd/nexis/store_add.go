package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
)

var storeAddFlags struct {
	name   string
	unpack bool
}

func init() {
	add := command("add PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		if storeAddFlags.name != "" && len(args) > 1 {
			return fmt.Errorf("--name needs exactly one PATH")
		}
		return here.Update(func(s *store.Store) error {
			for _, a := range args {
				pi, err := s.AddPath(a, storeAddFlags.name)
				if err != nil {
					return err
				}
				fmt.Println(s.Logical(pi.Path))
			}
			return nil
		})
	})
	add.Flags().StringVar(&storeAddFlags.name, "name", "", "store the path under `NAME` instead of the base name")
	fixed := command("add-fixed --name NAME [--unpack] FILE", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		if storeAddFlags.name == "" {
			return fmt.Errorf("--name is required: the name the evaluation gives the fetch (stdenv-2026.12 for the stdenv)")
		}
		return here.Update(func(s *store.Store) error {
			p, sum, _, err := realise.AddFixed(s, args[0], storeAddFlags.name, storeAddFlags.unpack, "")
			if err == nil {
				fmt.Printf("%s\tsha256:%s\n", s.Logical(p), sum)
			}
			return err
		})
	})
	fixed.Flags().StringVar(&storeAddFlags.name, "name", "", "the store `NAME` (the fetch's name)")
	fixed.Flags().BoolVar(&storeAddFlags.unpack, "unpack", false, "store the unpacked archive, as fetch_url(unpack = True)")
	stdenv := command("add-stdenv MANIFEST", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		m, err := realise.LoadStdenvManifest(args[0])
		if err != nil {
			return err
		}
		return here.Update(func(s *store.Store) error {
			n, err := m.AddTo(s)
			if err == nil {
				fmt.Fprintf(os.Stderr, "nexis: %d stdenv tarball(s) added\n", n)
			}
			return err
		})
	})
	register(storeCmd, add, fixed, stdenv)
}
