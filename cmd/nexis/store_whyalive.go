package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store/gc"
)

var whyAliveFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:  "why-alive PATH",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ps, err := here.OpenStorePaths(args)
			if err != nil {
				return err
			}
			defer s.Close()
			l, err := gc.WhyAlive(s, ps[0])
			if err != nil {
				return err
			}
			if whyAliveFlags.json {
				return printJSON(l)
			}
			l.Print(os.Stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&whyAliveFlags.json, "json", false, "print JSON")
	register(storeCmd, cmd)
}
