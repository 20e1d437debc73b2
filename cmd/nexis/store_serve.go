package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store/cache"
)

var storeServeFlags struct {
	stdio bool
}

func init() {
	cmd := &cobra.Command{
		Use:    "serve --stdio",
		Short:  "Answer a remote nexis copy on stdin/stdout (run by ssh)",
		Hidden: true,
		Long: `The remote side of nexis copy --to ssh://: queries which paths are valid
and receives signed archives, registering them atomically. It trusts only
this machine's keys (<root>/etc/nexis/trusted-keys). The protocol is
documented in store/cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !storeServeFlags.stdio {
				return fmt.Errorf("serve speaks only on stdin/stdout: pass --stdio")
			}
			trusted, err := trustedKeys(nil)
			if err != nil {
				return err
			}
			s, err := openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			if err := cache.Serve(s, os.Stdin, os.Stdout, trusted); err != nil {
				return err
			}
			return s.Close()
		},
	}
	cmd.Flags().BoolVar(&storeServeFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	storeCmd.AddCommand(cmd)
}
