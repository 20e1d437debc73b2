package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

var schemaFlags struct{ jsonSchema bool }

func init() {
	cmd := command("option [KEY] [CONFIG]", cobra.MaximumNArgs(2), runOption)
	jsonFlag(cmd, "print JSON")
	schema := command("schema", cobra.NoArgs, func(cmd *cobra.Command, _ []string) error {
		if schemaFlags.jsonSchema {
			return printJSON(lang.ConfigSchema.JSONSchema())
		}
		return show(lang.OptionList(lang.ConfigSchema.Options()), nil)
	})
	schema.Flags().BoolVar(&schemaFlags.jsonSchema, "json-schema", false, "print the config's JSON Schema (draft 2020-12)")
	register(rootCmd, cmd, schema)
}

func runOption(cmd *cobra.Command, args []string) error {
	query := ""
	if len(args) > 0 {
		query = args[0]
	}
	s, declared, err := lang.ConfigSchema.Lookup(query)
	if query == "" || err != nil {
		found := lang.ConfigSchema.Search(query)
		if len(found) == 0 {
			return fmt.Errorf("%v, and no key's name or description mentions %q: `nexis option` lists every key", err, query)
		}
		return show(lang.OptionList(found), nil)
	}
	var cfg *lang.Config
	cfgPath := here.ConfigPath(args[1:])
	if len(args) > 1 {
		if cfg, err = lang.LoadConfig(cfgPath); err != nil {
			reportEvalError(os.Stderr, err)
			return exitError{1}
		}
	} else if c, err := lang.LoadConfig(cfgPath); err == nil {
		cfg = c
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "nexis: the system's config is not read: %v\n", err)
	}
	o := lang.Option{Key: declared, Schema: s}.Report()
	if cfg != nil {
		if err := o.AddValues(cfg, cfgPath, query); err != nil {
			return err
		}
	}
	return show(o, nil)
}
