package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
)

var storeAddFlags struct{ name string }

func init() {
	cmd := &cobra.Command{
		Use:  "add PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if storeAddFlags.name != "" && len(args) > 1 {
				return fmt.Errorf("--name needs exactly one PATH")
			}
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			for _, a := range args {
				name := storeAddFlags.name
				if name == "" {
					abs, err := filepath.Abs(a)
					if err != nil {
						return err
					}
					name = filepath.Base(abs)
				}
				pi, err := s.AddPath(a, name)
				if err != nil {
					return err
				}
				fmt.Println(s.Logical(pi.Path))
			}
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&storeAddFlags.name, "name", "", "store the path under `NAME` instead of the base name")
	register(storeCmd, cmd)
}
