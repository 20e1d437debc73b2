package lang

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// OptionReport is one key as `nexis option` shows it: what the schema
// declares, and its values in a config (its --json form).
type OptionReport struct {
	Key         string              `json:"key"`
	Type        string              `json:"type"`
	Default     any                 `json:"default"`
	DefaultText string              `json:"default_text"`
	Description string              `json:"description"`
	Example     any                 `json:"example"`
	ReadBy      string              `json:"read_by,omitempty"`
	Values      []OptionValueReport `json:"values"`

	schema *Schema
	// withConfig: the values were looked up in a config (none found
	// reads differently from none asked for).
	withConfig bool
}

// OptionValueReport is a key's value in a config, and where it is set.
type OptionValueReport struct {
	Key    string `json:"key"`
	Value  any    `json:"value"`
	Set    bool   `json:"set"`
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// Report is the option as `nexis option` shows it, without a config.
func (o Option) Report() *OptionReport {
	return &OptionReport{
		Key: o.Key, Type: o.Schema.Type(), Default: o.Schema.Default, DefaultText: o.Schema.DefaultText(),
		Description: o.Schema.Doc, Example: o.Schema.Example, ReadBy: o.Schema.ReadBy, Values: []OptionValueReport{},
		schema: o.Schema,
	}
}

// Summary is the first sentence of the option's description, for
// one-line listings.
func (o Option) Summary() string {
	if i := strings.Index(o.Schema.Doc, ". "); i >= 0 {
		return o.Schema.Doc[:i+1]
	}
	return o.Schema.Doc
}

// AddValues adds key's values in the config cfg, loaded from the file
// cfgPath: their files are named as paths that open from where
// cfgPath does (the config names them relative to its directory).
func (r *OptionReport) AddValues(cfg *Config, cfgPath, key string) error {
	vals, err := cfg.Values(key)
	if err != nil {
		return err
	}
	r.withConfig = true
	for _, v := range vals {
		file := v.Pos.File
		if file != "" {
			file = filepath.Join(filepath.Dir(cfgPath), file)
		}
		r.Values = append(r.Values, OptionValueReport{Key: v.Key, Value: v.Value, Set: v.Set, File: file, Line: v.Pos.Line, Column: v.Pos.Col})
	}
	return nil
}

// Print writes the key as `nexis option KEY` shows it.
func (r *OptionReport) Print(out io.Writer) {
	s := r.schema
	fmt.Fprintln(out, r.Key)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(out, "  %-12s %s\n", k+":", v)
		}
	}
	row("type", r.Type)
	row("default", r.DefaultText)
	row("description", r.Description)
	if r.Example != nil {
		row("example", TOMLValue(r.Example))
	}
	row("read by", r.ReadBy)
	if s.Kind == KindTable {
		fmt.Fprintln(out, "  keys:")
		for _, k := range s.Options() {
			if !strings.ContainsAny(k.Key, ".[") {
				fmt.Fprintf(out, "    %s.%s\n", r.Key, k.Key)
			}
		}
	}
	if !r.withConfig {
		return
	}
	if len(r.Values) == 0 {
		fmt.Fprintln(out, "  value:       none in this config")
	}
	for _, v := range r.Values {
		var shown string
		switch {
		case v.Set && (s.Kind == KindTable || s.Elem != nil && s.Elem.Kind == KindTable):
			shown = "set"
		case v.Set:
			shown = TOMLValue(v.Value)
		case v.Value != nil:
			shown = TOMLValue(v.Value) + " (the default)"
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

// OptionList is keys as `nexis option` and `nexis schema` list them.
type OptionList []Option

// Print writes one key a line with the first sentence of its
// description.
func (l OptionList) Print(out io.Writer) {
	width := 0
	for _, o := range l {
		width = max(width, len(o.Key))
	}
	for _, o := range l {
		fmt.Fprintf(out, "%-*s  %s\n", width, o.Key, o.Summary())
	}
}

// MarshalJSON writes every key's report.
func (l OptionList) MarshalJSON() ([]byte, error) {
	list := make([]*OptionReport, len(l))
	for i, o := range l {
		list[i] = o.Report()
	}
	return json.Marshal(list)
}
