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
	cmd := command("serve --stdio", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		if !storeServeFlags.stdio {
			return fmt.Errorf("serve speaks only on stdin/stdout: pass --stdio")
		}
		return here.Serve(os.Stdin, os.Stdout, os.Getenv("NEXIS_SIGN_KEY"))
	})
	cmd.Hidden = true
	cmd.Flags().BoolVar(&storeServeFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	register(storeCmd, cmd)
}
