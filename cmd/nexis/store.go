package main

import (
	"github.com/spf13/cobra"
)

var storeCmd = &cobra.Command{Use: "store"}

func init() {
	storeCmd.PersistentFlags().StringVar(&here.Dedup, "dedup", "auto", "how identical files are shared: `MODE` auto, reflink, hardlink, copy or none")
	register(rootCmd, storeCmd)
}
