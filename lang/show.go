package lang

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/nexisos/nexis/builtins"
)

// WriteTree prints a derivation and its closure as a tree: name, version
// and output path per line, each derivation's inputs below it. A
// derivation already shown is named again without its inputs.
func WriteTree(w io.Writer, root *builtins.Derivation) error {
	shown := map[string]bool{}
	var b strings.Builder
	var walk func(d *builtins.Derivation, prefix string, last, top bool)
	walk = func(d *builtins.Derivation, prefix string, last, top bool) {
		branch, next := "", ""
		if !top {
			branch, next = "├── ", "│   "
			if last {
				branch, next = "└── ", "    "
			}
		}
		fmt.Fprintf(&b, "%s%s%s  %s", prefix, branch, d.FullName(), d.Out())
		if d.Fixed != nil {
			fmt.Fprintf(&b, "  (fetch %s)", fetchedFrom(d))
		}
		if shown[d.ID()] && len(d.Drvs)+len(d.Srcs) > 0 {
			b.WriteString("  (inputs shown above)\n")
			return
		}
		b.WriteString("\n")
		shown[d.ID()] = true
		n := len(d.Drvs) + len(d.Srcs)
		// Inputs are kept in id order for the encoding; people read names.
		drvs := append([]*builtins.Derivation(nil), d.Drvs...)
		sort.SliceStable(drvs, func(i, j int) bool {
			if drvs[i].FullName() != drvs[j].FullName() {
				return drvs[i].FullName() < drvs[j].FullName()
			}
			return drvs[i].Out() < drvs[j].Out()
		})
		for i, in := range drvs {
			walk(in, prefix+next, i == n-1, false)
		}
		for i, s := range d.Srcs {
			br := "├── "
			if len(d.Drvs)+i == n-1 {
				br = "└── "
			}
			fmt.Fprintf(&b, "%s%s%s%s  %s  (source %s)\n", prefix, next, br, s.Name, s.Path, s.Display)
		}
	}
	walk(root, "", true, true)
	_, err := io.WriteString(w, b.String())
	return err
}

func fetchedFrom(d *builtins.Derivation) string {
	if d.Env["rev"] != "" {
		return d.Env["url"] + " @ " + d.Env["rev"][:12]
	}
	return d.Env["url"]
}

// ClosureJSON is the --json form of an evaluation: the root's id and
// every derivation of its closure by id, with its output paths and its
// canonical encoding; every source with its tree hash.
type ClosureJSON struct {
	Root        string                    `json:"root"`
	Out         string                    `json:"out"`
	Derivations map[string]DerivationJSON `json:"derivations"`
	Sources     map[string]SourceJSON     `json:"sources"`
}

// DerivationJSON is one derivation in ClosureJSON.
type DerivationJSON struct {
	Name     string            `json:"name"`
	Outputs  map[string]string `json:"outputs"`
	Encoding json.RawMessage   `json:"drv"`
	// Redacted is set for a secret file: its content is replaced in
	// "drv", so the encoding shown no longer hashes to the id.
	Redacted bool `json:"redacted,omitempty"`
}

// SourceJSON is one source in ClosureJSON.
type SourceJSON struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
	From string `json:"from"`
}

// WriteJSON prints the closure of root as indented canonical JSON: keys
// sorted, the same bytes for the same config on any machine.
func WriteJSON(w io.Writer, root *builtins.Derivation) error {
	out := ClosureJSON{Root: root.ID(), Out: root.Out(), Derivations: map[string]DerivationJSON{}, Sources: map[string]SourceJSON{}}
	for _, d := range builtins.Closure(root) {
		outs := map[string]string{}
		for _, o := range d.Outputs {
			outs[o], _ = d.OutputPath(o)
		}
		dj := DerivationJSON{Name: d.FullName(), Outputs: outs, Encoding: d.Encoding()}
		if d.Env["secret"] == "1" {
			enc, err := redact(d.Encoding())
			if err != nil {
				return err
			}
			dj.Encoding, dj.Redacted = enc, true
		}
		out.Derivations[d.ID()] = dj
		for _, s := range d.Srcs {
			out.Sources[s.Path] = SourceJSON{Name: s.Name, Hash: "blake3:" + s.TreeHash, From: s.Display}
		}
	}
	enc, err := builtins.CanonicalJSON(out)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, enc, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// WriteFiles prints the content of every file the closure of root
// writes (write_file derivations), sorted by name then path, so a reader
// sees exactly what a machine will get. Secrets show only their size.
func WriteFiles(w io.Writer, root *builtins.Derivation) error {
	var files []*builtins.Derivation
	for _, d := range builtins.Closure(root) {
		if d.Builder == "builtin:write_file" {
			files = append(files, d)
		}
	}
	sort.SliceStable(files, func(i, j int) bool {
		if files[i].Name != files[j].Name {
			return files[i].Name < files[j].Name
		}
		return files[i].Out() < files[j].Out()
	})
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "\n=== %s (mode %s) %s\n", f.Name, f.Env["mode"], f.Out())
		content := f.Env["content"]
		switch {
		case f.Env["secret"] == "1":
			fmt.Fprintf(&b, "(secret: %d bytes, readable by root only)\n", len(content))
		case content == "":
			b.WriteString("(empty)\n")
		default:
			b.WriteString(content)
			if !strings.HasSuffix(content, "\n") {
				b.WriteString("\n(no newline at end of file)\n")
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// redact replaces the content of a secret write_file in its encoding:
// eval output lands in terminals, logs and bug reports.
func redact(enc []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(enc, &m); err != nil {
		return nil, err
	}
	if env, ok := m["env"].(map[string]any); ok {
		if c, ok := env["content"].(string); ok {
			env["content"] = fmt.Sprintf("(secret: %d bytes, not shown)", len(c))
		}
	}
	return builtins.CanonicalJSON(m)
}
