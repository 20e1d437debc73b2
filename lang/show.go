package lang

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// WriteTree prints a derivation and its closure as a tree: name, version
// and output path per line, each derivation's inputs below it. A
// derivation already shown is named again without its inputs. Lines are
// written as they are made: a tree of 100,000 packages is 200 MB of text.
func WriteTree(w io.Writer, root *builtins.Derivation) error {
	t := treeWriter{w: bufio.NewWriterSize(w, 256<<10), shown: map[string]bool{}}
	t.walk(root, true, true)
	return t.w.Flush()
}

type treeWriter struct {
	w      *bufio.Writer
	shown  map[string]bool
	prefix []byte
	// named holds the inputs of the derivations being walked, each
	// one's after its parent's: one slice for the whole tree.
	named []namedDrv
}

func (t *treeWriter) walk(d *builtins.Derivation, last, top bool) {
	w := t.w
	w.Write(t.prefix)
	mark := len(t.prefix)
	if !top {
		if last {
			w.WriteString("└── ")
			t.prefix = append(t.prefix, "    "...)
		} else {
			w.WriteString("├── ")
			t.prefix = append(t.prefix, "│   "...)
		}
	}
	defer func() { t.prefix = t.prefix[:mark] }()
	w.WriteString(d.FullName())
	w.WriteString("  ")
	w.WriteString(d.Out())
	if d.Fixed != nil {
		w.WriteString("  (fetch ")
		w.WriteString(fetchedFrom(d))
		w.WriteByte(')')
	}
	n := len(d.Drvs) + len(d.Srcs)
	if n > 0 {
		if t.shown[d.ID()] {
			w.WriteString("  (inputs shown above)\n")
			return
		}
		t.shown[d.ID()] = true
	}
	w.WriteByte('\n')
	// Inputs are kept in id order for the encoding; people read names.
	if len(d.Drvs) > 0 {
		start := len(t.named)
		for _, in := range d.Drvs {
			t.named = append(t.named, namedDrv{in.FullName(), in.Out(), in})
		}
		// (name, path) never ties between two derivations: the path
		// holds the identity.
		slices.SortFunc(t.named[start:], byName)
		for i := range len(d.Drvs) {
			t.walk(t.named[start+i].d, i == n-1, false)
		}
		t.named = t.named[:start]
	}
	for i, s := range d.Srcs {
		w.Write(t.prefix)
		if len(d.Drvs)+i == n-1 {
			w.WriteString("└── ")
		} else {
			w.WriteString("├── ")
		}
		w.WriteString(s.Name)
		w.WriteString("  ")
		w.WriteString(s.Path)
		w.WriteString("  (source ")
		w.WriteString(s.Display)
		w.WriteString(")\n")
	}
}

type namedDrv struct {
	name, out string
	d         *builtins.Derivation
}

func byName(a, b namedDrv) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	return strings.Compare(a.out, b.out)
}

func fetchedFrom(d *builtins.Derivation) string {
	if d.Env[builtins.EnvRev] != "" {
		return d.Env[builtins.EnvURL] + " @ " + d.Env[builtins.EnvRev][:12]
	}
	return d.Env[builtins.EnvURL]
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
		if d.IsSecret() {
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
		if d.Builder == builtins.BuilderWriteFile {
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
		fmt.Fprintf(&b, "\n=== %s (mode %s) %s\n", f.Name, f.Env[builtins.EnvMode], f.Out())
		content := f.Env[builtins.EnvContent]
		switch {
		case f.IsSecret():
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

// WriteValue writes what `nexis eval -e` prints of v: a string raw (so
// $(nexis eval -e ...) is a path), a derivation as its tree, anything
// else as Starlark would; with asJSON, a derivation as WriteJSON and
// anything else as indented JSON.
func WriteValue(w io.Writer, v starlark.Value, asJSON bool) error {
	if asJSON {
		if d, ok := v.(*builtins.Derivation); ok {
			return WriteJSON(w, d)
		}
		g, err := builtins.ToGo(v)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	}
	switch x := v.(type) {
	case starlark.String:
		_, err := fmt.Fprintln(w, string(x))
		return err
	case *builtins.Derivation:
		return WriteTree(w, x)
	}
	_, err := fmt.Fprintln(w, v.String())
	return err
}
