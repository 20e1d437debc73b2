package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

var schemaFlags struct{ jsonSchema bool }

func init() {
	cmd := &cobra.Command{
		Use:  "schema",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schemaFlags.jsonSchema {
				return writeJSON(cmd.OutOrStdout(), lang.ConfigSchema.JSONSchema())
			}
			return printOptions(cmd.OutOrStdout(), lang.ConfigSchema.Options())
		},
	}
	cmd.Flags().BoolVar(&schemaFlags.jsonSchema, "json-schema", false, "print the config's JSON Schema (draft 2020-12)")
	register(rootCmd, cmd)
}
