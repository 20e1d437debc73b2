package main

import (
	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

var schemaFlags struct{ jsonSchema bool }

func init() {
	cmd := command("schema", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		if schemaFlags.jsonSchema {
			return printJSON(lang.ConfigSchema.JSONSchema())
		}
		return show(lang.OptionList(lang.ConfigSchema.Options()), nil)
	})
	cmd.Flags().BoolVar(&schemaFlags.jsonSchema, "json-schema", false, "print the config's JSON Schema (draft 2020-12)")
	register(rootCmd, cmd)
}
