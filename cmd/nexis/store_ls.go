package main

import (
	"os"

	"github.com/spf13/cobra"
)

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
