// Package docgen renders the reference pages that are generated from
// the code, so they cannot drift from it: docs/options.md and
// nexis-config(5) from the config schema, docs/builtins.md from the
// docstrings of the builtins and the stdlib. The man pages of the commands
// are cobra's (cmd/nexis); docs_test.go there writes all of them and
// fails when a checked-in copy is stale.
package docgen

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/lang/source"
)

// OptionsMarkdown is docs/options.md: every key of the config with its
// type, default, description and an example.
func OptionsMarkdown(s *lang.Schema) []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from lang/schema.go by `go generate ./cmd/nexis`; do not edit. -->\n\n")
	b.WriteString("# Configuration options\n\n")
	b.WriteString("Every key a NexisOS config may have. `nexis option KEY [CONFIG]` shows one,\n")
	b.WriteString("with its value in a config and where it is set; `nexis schema --json-schema`\n")
	b.WriteString("gives the same as a JSON Schema for editors. In a key, `<name>` stands for\n")
	b.WriteString("any name of a table of tables and `[]` for any element of an array of tables.\n")
	b.WriteString("An unset list or table is empty.\n")
	for _, o := range s.Options() {
		b.WriteString(optionSection(o, "##"))
	}
	return b.Bytes()
}

func optionSection(o lang.Option, heading string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s `%s`\n\n%s\n\n", heading, o.Key, o.Schema.Doc)
	fmt.Fprintf(&b, "- Type: %s\n", o.Schema.Type())
	if d := o.Schema.DefaultText(); d != "" {
		if o.Schema.Default != nil || d == "[]" || d == "{}" {
			d = "`" + d + "`"
		}
		fmt.Fprintf(&b, "- Default: %s\n", d)
	}
	if o.Schema.Example != nil {
		fmt.Fprintf(&b, "- Example: `%s`\n", lang.TOMLValue(o.Schema.Example))
	}
	if o.Schema.ReadBy != "" {
		fmt.Fprintf(&b, "- Read by: %s\n", o.Schema.ReadBy)
	}
	return b.String()
}

// ConfigManPage is nexis-config(5), the same reference as a man page.
func ConfigManPage(s *lang.Schema) []byte {
	var b bytes.Buffer
	b.WriteString("% NEXIS-CONFIG 5 \"\" \"nexis\" \"File Formats\"\n\n")
	b.WriteString("# NAME\n\nnexis-config - the NexisOS system configuration (config.toml)\n\n")
	b.WriteString("# DESCRIPTION\n\n")
	b.WriteString("A NexisOS machine is described by a TOML file, by default /etc/nexis/config.toml, ")
	b.WriteString("and the files its [includes] paths name. Every key is listed below with its type, ")
	b.WriteString("default and meaning. In a key, \\<name> stands for any name of a table of tables ")
	b.WriteString("and [] for any element of an array of tables. An unset list or table is empty.\n\n")
	b.WriteString("# OPTIONS\n")
	for _, o := range s.Options() {
		// Man pages have no code spans; <name> would read as HTML.
		sec := strings.NewReplacer("`", "**", "<", "\\<").Replace(optionSection(o, "##"))
		b.WriteString(sec)
	}
	b.WriteString("\n# SEE ALSO\n\n**nexis**(1), **nexis-option**(1), **nexis-schema**(1)\n")
	return md2man.Render(b.Bytes())
}

// BuiltinsMarkdown is docs/builtins.md: the Go builtins and the stdlib's
// public functions, from their docstrings (what the repl's :doc shows).
func BuiltinsMarkdown(builtins map[string]string, stdlib []source.FuncDoc) []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from the builtins' and the stdlib's docstrings by `go generate ./cmd/nexis`; do not edit. -->\n\n")
	b.WriteString("# Builtins and the stdlib\n\nWhat every module sees, and what it can load from `@stdlib//`. In `nexis repl`, `:doc NAME` shows the same.\n\n## Builtins\n")
	names := make([]string, 0, len(builtins))
	for k := range builtins {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, n := range names {
		sig, rest, _ := strings.Cut(builtins[n], "\n\n")
		fmt.Fprintf(&b, "\n### `%s`\n\n```\n%s\n```\n\n%s\n", n, sig, strings.TrimSpace(rest))
	}
	module := ""
	for _, f := range stdlib {
		if f.Module != module {
			module = f.Module
			fmt.Fprintf(&b, "\n## `@stdlib//%s`\n", module)
		}
		fmt.Fprintf(&b, "\n### `%s`\n\n```\n%s\n```\n", f.Name, f.Signature)
		if f.Doc != "" {
			fmt.Fprintf(&b, "\n%s\n", f.Doc)
		}
	}
	return b.Bytes()
}
