package main

import (
	"github.com/spf13/cobra"
)

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
