package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store/gc"
)

var whyAliveFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:   "why-alive PATH",
		Short: "Show the chain of references from a root to PATH, or say it is dead",
		Long: `Explain why the garbage collector keeps PATH: print a shortest chain from a
root (a generation, an out-link, a root added with 'nexis store add-root',
or a running nexis process's temporary root) through the paths that refer
to each other, down to PATH. A path no root reaches is dead: the next
'nexis gc' deletes it (or 'nexis gc --full', when only a reference cycle
holds it).`,
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
	storeCmd.AddCommand(cmd)
}
