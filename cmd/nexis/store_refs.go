package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

func init() {
	refs := command("refs PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).References))
	})
	referrers := command("referrers PATH...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error {
		return show(here.Relate(args, (*store.Store).Referrers))
	})
	why := command("why-depends A B", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return show(host.QueryPaths(here, args, whyDepends))
	})
	for _, c := range []*cobra.Command{refs, referrers, why} {
		jsonFlag(c, "print JSON")
	}
	register(storeCmd, refs, referrers, why)
}

func whyDepends(s *store.Store, ps []storepath.Path) (*store.Dependence, error) {
	d, err := s.ExplainDepends(ps[0], ps[1])
	if err == nil && d == nil {
		err = fmt.Errorf("%s does not depend on %s", s.Logical(ps[0]), s.Logical(ps[1]))
	}
	return d, err
}
