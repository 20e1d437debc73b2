package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
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
			trusted, err := here.TrustedKeys()
			if err != nil {
				return err
			}
			s, err := here.OpenStore()
			if err != nil {
				return err
			}
			defer s.Close()
			opts := cache.ServeOptions{Trusted: trusted}
			if f := os.Getenv("NEXIS_SIGN_KEY"); f != "" {
				if opts.Key, err = sign.ReadSecretKeyFile(f); err != nil {
					return fmt.Errorf("NEXIS_SIGN_KEY: %w", err)
				}
			}
			state, err := here.PhysicalStateDir()
			if err != nil {
				return err
			}
			opts.Build = pool.ServeBuild(s, realise.Options{LogDir: filepath.Join(state, "logs")})
			if err := cache.ServeWith(s, os.Stdin, os.Stdout, opts); err != nil {
				return err
			}
			return s.Close()
		},
	}
	cmd.Flags().BoolVar(&storeServeFlags.stdio, "stdio", false, "speak the protocol on stdin and stdout")
	storeCmd.AddCommand(cmd)
}
