package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

var schemaFlags struct{ jsonSchema bool }

func init() {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print every config key, or the config's JSON Schema",
		Long: `Print every key a config may have with a line about it, as
` + "`nexis option`" + ` does without a key.

--json-schema prints the schema as a JSON Schema (draft 2020-12) that
editors use to complete and check config.toml: save it and name it in the
file's first line, as taplo and Even Better TOML read it:

  nexis schema --json-schema > nexis.schema.json
  #:schema ./nexis.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if schemaFlags.jsonSchema {
				return writeJSON(cmd.OutOrStdout(), lang.ConfigSchema.JSONSchema())
			}
			return printOptions(cmd.OutOrStdout(), lang.ConfigSchema.Options())
		},
	}
	cmd.Flags().BoolVar(&schemaFlags.jsonSchema, "json-schema", false, "print the config's JSON Schema (draft 2020-12)")
	rootCmd.AddCommand(cmd)
}
