package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/realise"
)

func init() {
	cmd := &cobra.Command{
		Use:   "log PATH-OR-NAME",
		Short: "Print the kept log of a build",
		Long: `Print the full log of the last build of a store path (or of anything
inside it), or of the newest build of a package named NAME (or
NAME-VERSION). Logs live under <state>/logs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := args[0]
			// An out-link or a physical path names the same store path.
			storeDirHere, err := here.PhysicalStoreDir()
			if err != nil {
				return err
			}
			state, err := here.PhysicalStateDir()
			if err != nil {
				return err
			}
			if resolved, err := filepath.EvalSymlinks(arg); err == nil && strings.HasPrefix(resolved, storeDirHere+"/") {
				arg = here.StoreDir() + strings.TrimPrefix(resolved, storeDirHere)
			}
			p, err := realise.FindLog(filepath.Join(state, "logs"), here.StoreDir(), arg)
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("reading log: %w", err)
			}
			defer f.Close()
			_, err = io.Copy(cmd.OutOrStdout(), f)
			return err
		},
	}
	rootCmd.AddCommand(cmd)
}
