package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

var storeServeFlags struct {
	stdio bool
}

func init() {
	cmd := &cobra.Command{
		Use:    "serve --stdio",
		Short:  "Answer a remote nexis copy on stdin/stdout (run by ssh)",
		Hidden: true,
		Long: `The remote side of nexis copy --to ssh:// and of a builder pool
([nexis.builders]): queries which paths are valid, receives signed
archives and registers them atomically, builds the derivations a pool
sends in this machine's sandbox, and sends their outputs back signed with
$NEXIS_SIGN_KEY. It trusts only this machine's keys
(<root>/etc/nexis/trusted-keys). The protocol is documented in
store/cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !storeServeFlags.stdio {
				return fmt.Errorf("serve speaks only on stdin/stdout: pass --stdio")
			}
			return here.Serve(os.Stdin, os.Stdout, os.Getenv("NEXIS_SIGN_KEY"))
		},
	}
	cmd.Flags().BoolVar(&storeServeFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	storeCmd.AddCommand(cmd)
}
