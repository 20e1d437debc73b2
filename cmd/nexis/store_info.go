package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store"
)

var storeInfoFlags struct{ json bool }

// storeInfoJSON is the --json form of `nexis store info`.
type storeInfoJSON struct {
	Store        string `json:"store"`
	Physical     string `json:"physical"`
	Dedup        string `json:"dedup"`
	Schema       int    `json:"schema"`
	store.Stats  `json:"stats"`
	DedupSavings int64 `json:"dedup_savings"`
}

func init() {
	cmd := &cobra.Command{
		Use:   "info",
		Short: "Print counts, sizes and dedup savings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := here.OpenStoreRead()
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.Stats()
			if err != nil {
				return err
			}
			j := storeInfoJSON{
				Store: s.LogicalDir(), Physical: s.Dir(), Dedup: s.Dedup().String(), Schema: store.SchemaVersion,
				Stats: st, DedupSavings: st.Bytes - st.ContentBytes,
			}
			if storeInfoFlags.json {
				return printJSON(j)
			}
			fmt.Printf("store:          %s (at %s)\n", j.Store, j.Physical)
			fmt.Printf("dedup:          %s\n", j.Dedup)
			fmt.Printf("paths:          %d\n", st.Paths)
			fmt.Printf("roots:          %d\n", st.Roots)
			fmt.Printf("files:          %d\n", st.Files)
			fmt.Printf("size:           %s (%d bytes)\n", humanBytes(st.Bytes), st.Bytes)
			fmt.Printf("unique content: %d, %s\n", st.Contents, humanBytes(st.ContentBytes))
			fmt.Printf("dedup savings:  %s\n", humanBytes(j.DedupSavings))
			return nil
		},
	}
	cmd.Flags().BoolVar(&storeInfoFlags.json, "json", false, "print JSON")
	storeCmd.AddCommand(cmd)
}
