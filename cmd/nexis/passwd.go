package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

var passwdFlags struct {
	method string
}

func init() {
	cmd := command("passwd", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		pw, err := activate.ReadPassword(os.Stdin, os.Stderr)
		if err != nil {
			return err
		}
		h, err := activate.HashPassword(pw, activate.HashMethod(passwdFlags.method))
		if err != nil {
			return err
		}
		fmt.Println(h)
		return nil
	})
	cmd.Flags().StringVar(&passwdFlags.method, "method", string(activate.Yescrypt), "hash scheme: yescrypt or sha512crypt")
	register(rootCmd, cmd)
}
