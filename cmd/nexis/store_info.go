package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
)

func init() {
	cmd := command("info", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return show(host.Query(here, (*store.Store).Info))
	})
	jsonFlag(cmd, "print JSON")
	register(storeCmd, cmd)
}
