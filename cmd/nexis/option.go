package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/lang"
)

var optionFlags struct{ json bool }

func init() {
	cmd := &cobra.Command{
		Use:  "option [KEY] [CONFIG]",
		Args: cobra.MaximumNArgs(2),
		RunE: runOption,
	}
	cmd.Flags().BoolVar(&optionFlags.json, "json", false, "print JSON")
	register(rootCmd, cmd)
}

// optionJSON is one key in `nexis option --json`.
type optionJSON struct {
	Key         string            `json:"key"`
	Type        string            `json:"type"`
	Default     any               `json:"default"`
	DefaultText string            `json:"default_text"`
	Description string            `json:"description"`
	Example     any               `json:"example"`
	ReadBy      string            `json:"read_by,omitempty"`
	Values      []optionValueJSON `json:"values"`
}

type optionValueJSON struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Set    bool   `json:"set"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

func runOption(cmd *cobra.Command, args []string) error {
	out := cmd.OutOrStdout()
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
		return printOptions(out, found)
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
	o := describeOption(lang.Option{Key: declared, Schema: s})
	if cfg != nil {
		vals, err := cfg.Values(query)
		if err != nil {
			return err
		}
		for _, v := range vals {
			// Files are named as the config names them, relative to
			// its directory: here, as a path that opens from here.
			file := v.Pos.File
			if file != "" {
				file = filepath.Join(filepath.Dir(cfgPath), file)
			}
			o.Values = append(o.Values, optionValueJSON{Key: v.Key, Value: v.Value, Set: v.Set, File: file, Line: v.Pos.Line, Column: v.Pos.Col})
		}
	}
	if optionFlags.json {
		return writeJSON(out, o)
	}
	printOption(out, o, s, cfg != nil)
	return nil
}

func describeOption(o lang.Option) optionJSON {
	return optionJSON{
		Key: o.Key, Type: o.Schema.Type(), Default: o.Schema.Default, DefaultText: o.Schema.DefaultText(),
		Description: o.Schema.Doc, Example: o.Schema.Example, ReadBy: o.Schema.ReadBy, Values: []optionValueJSON{},
	}
}

func printOptions(out io.Writer, opts []lang.Option) error {
	if optionFlags.json {
		list := make([]optionJSON, len(opts))
		for i, o := range opts {
			list[i] = describeOption(o)
		}
		return writeJSON(out, list)
	}
	width := 0
	for _, o := range opts {
		width = max(width, len(o.Key))
	}
	for _, o := range opts {
		fmt.Fprintf(out, "%-*s  %s\n", width, o.Key, firstSentence(o.Schema.Doc))
	}
	return nil
}

func printOption(out io.Writer, o optionJSON, s *lang.Schema, withConfig bool) {
	fmt.Fprintln(out, o.Key)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(out, "  %-12s %s\n", k+":", v)
		}
	}
	row("type", o.Type)
	row("default", o.DefaultText)
	row("description", o.Description)
	if o.Example != nil {
		row("example", lang.TOMLValue(o.Example))
	}
	row("read by", o.ReadBy)
	if s.Kind == lang.KindTable {
		fmt.Fprintln(out, "  keys:")
		for _, k := range s.Options() {
			if !strings.ContainsAny(k.Key, ".[") {
				fmt.Fprintf(out, "    %s.%s\n", o.Key, k.Key)
			}
		}
	}
	if !withConfig {
		return
	}
	if len(o.Values) == 0 {
		fmt.Fprintln(out, "  value:       none in this config")
	}
	for _, v := range o.Values {
		var shown string
		switch {
		case v.Set && (s.Kind == lang.KindTable || s.Elem != nil && s.Elem.Kind == lang.KindTable):
			shown = "set"
		case v.Set:
			shown = lang.TOMLValue(v.Value)
		case v.Value != nil:
			shown = lang.TOMLValue(v.Value) + " (the default)"
		case s.DefaultText() != "":
			shown = "not set: " + s.DefaultText()
		default:
			shown = "not set"
		}
		if v.Set {
			shown += fmt.Sprintf(" (%s:%d:%d)", v.File, v.Line, v.Column)
		}
		fmt.Fprintf(out, "  %-12s %s = %s\n", "value:", v.Key, shown)
	}
}

// firstSentence is the start of a description, for one-line listings.
func firstSentence(doc string) string {
	if i := strings.Index(doc, ". "); i >= 0 {
		return doc[:i+1]
	}
	return doc
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
