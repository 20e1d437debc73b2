package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

func init() {
	refs := &cobra.Command{
		Use:  "refs PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(here.Relate(args, (*store.Store).References))
		},
	}
	referrers := &cobra.Command{
		Use:  "referrers PATH...",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(here.Relate(args, (*store.Store).Referrers))
		},
	}
	why := &cobra.Command{
		Use:  "why-depends A B",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(host.QueryPaths(here, args, whyDepends))
		},
	}
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
