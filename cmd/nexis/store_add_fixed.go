package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
)

var storeAddFixedFlags struct {
	name   string
	unpack bool
}

func init() {
	cmd := &cobra.Command{
		Use:  "add-fixed --name NAME [--unpack] FILE",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if storeAddFixedFlags.name == "" {
				return fmt.Errorf("--name is required: the name the evaluation gives the fetch (stdenv-2026.12 for the stdenv)")
			}
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			p, sum, _, err := realise.AddFixed(s, args[0], storeAddFixedFlags.name, storeAddFixedFlags.unpack, "")
			if err != nil {
				return err
			}
			fmt.Printf("%s\tsha256:%s\n", s.Logical(p), sum)
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&storeAddFixedFlags.name, "name", "", "the store `NAME` (the fetch's name)")
	cmd.Flags().BoolVar(&storeAddFixedFlags.unpack, "unpack", false, "store the unpacked archive, as fetch_url(unpack = True)")
	register(storeCmd, cmd)

	stdenvCmd := &cobra.Command{
		Use:  "add-stdenv MANIFEST",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := realise.LoadStdenvManifest(args[0])
			if err != nil {
				return err
			}
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			n, err := m.AddTo(s)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "nexis: %d stdenv tarball(s) added\n", n)
			return s.Close()
		},
	}
	register(storeCmd, stdenvCmd)
}

// stdenvManifest is --stdenv's manifest, read once.
var stdenvManifest *realise.StdenvManifest

// evalStdenv reads --stdenv (default $NEXIS_STDENV) for the evaluation
// options.
func evalStdenv() (map[string]any, error) {
	file := evalFlags.stdenv
	if file == "" {
		file = os.Getenv("NEXIS_STDENV")
	}
	if file == "" {
		return nil, nil
	}
	if stdenvManifest == nil {
		m, err := realise.LoadStdenvManifest(file)
		if err != nil {
			return nil, err
		}
		stdenvManifest = m
	}
	return stdenvManifest.Spec(), nil
}

// stdenvFiles are --stdenv's tarballs, which fetches of the stdenv take
// instead of downloading (nil without --stdenv).
func stdenvFiles() map[string]string {
	if stdenvManifest == nil {
		return nil
	}
	return stdenvManifest.LocalFiles()
}
