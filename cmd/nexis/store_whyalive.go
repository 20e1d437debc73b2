package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/storepath"
)

func init() {
	cmd := command("why-alive PATH", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, func(s *store.Store, ps []storepath.Path) (*gc.Liveness, error) {
			return gc.WhyAlive(s, ps[0])
		}))
	})
	jsonFlag(cmd, "print JSON")
	register(storeCmd, cmd)
}
