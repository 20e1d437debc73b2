package store

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nexisos/nexis/store/storepath"
)

// PathReport is what `nexis store path-info` says of a path (its --json
// form).
type PathReport struct {
	Path           string   `json:"path"`
	TreeHash       string   `json:"tree_hash"`
	Size           int64    `json:"size"`
	ClosureSize    *int64   `json:"closure_size,omitempty"`
	Files          int      `json:"files"`
	Registered     string   `json:"registered"`
	Deriver        string   `json:"deriver,omitempty"`
	ContentAddress string   `json:"content_address,omitempty"`
	Impure         string   `json:"impure,omitempty"`
	References     []string `json:"references"`
	Refcount       uint64   `json:"refcount"`
}

// Describe reports what the store knows of p; with closure, the size of
// its closure too.
func (s *Store) Describe(p storepath.Path, closure bool) (*PathReport, error) {
	pi, err := s.QueryPathInfo(p)
	if err != nil {
		return nil, err
	}
	r := &PathReport{
		Path: s.Logical(p), TreeHash: pi.TreeHash.String(), Size: pi.Size,
		Files: pi.Files, Registered: pi.Registered.UTC().Format(time.RFC3339Nano),
		Deriver: pi.Deriver, ContentAddress: pi.ContentAddress, Impure: pi.Impure, References: []string{},
	}
	if closure {
		n, err := s.ClosureSize(p)
		if err != nil {
			return nil, err
		}
		r.ClosureSize = &n
	}
	if r.Refcount, err = s.Refcount(p); err != nil {
		return nil, err
	}
	for _, ref := range pi.References {
		r.References = append(r.References, s.Logical(ref))
	}
	return r, nil
}

// Print writes the path and, with size, its size and closure size (when
// known), tab-separated on one line.
func (r *PathReport) Print(w io.Writer, size bool) {
	line := []string{r.Path}
	if size {
		line = append(line, fmt.Sprint(r.Size))
		if r.ClosureSize != nil {
			line = append(line, fmt.Sprint(*r.ClosureSize))
		}
	}
	fmt.Fprintln(w, strings.Join(line, "\t"))
}

// Dependence is a shortest chain of references from one path to
// another, with the files of each path that mention the next.
type Dependence struct {
	Chain []string `json:"chain"`
	// Files[i] are the files of Chain[i] that mention Hashes[i], the
	// hash part of Chain[i+1].
	Files  [][]string `json:"files"`
	Hashes []string   `json:"hashes"`
}

// ExplainDepends finds why a depends on b (WhyDepends) and the files
// that hold each reference; nil when a does not depend on b.
func (s *Store) ExplainDepends(a, b storepath.Path) (*Dependence, error) {
	chain, err := s.WhyDepends(a, b)
	if err != nil || chain == nil {
		return nil, err
	}
	d := &Dependence{Files: [][]string{}, Hashes: []string{}}
	for i, p := range chain {
		d.Chain = append(d.Chain, s.Logical(p))
		if i+1 < len(chain) {
			files, err := s.FilesReferring(p, chain[i+1])
			if err != nil {
				return nil, err
			}
			d.Files = append(d.Files, append([]string{}, files...))
			d.Hashes = append(d.Hashes, chain[i+1].Hash)
		}
	}
	return d, nil
}

// Print writes the chain, each path indented under the one that refers
// to it, with the files that hold the reference.
func (d *Dependence) Print(w io.Writer) {
	for i, p := range d.Chain {
		fmt.Fprintf(w, "%*s%s\n", 2*i, "", p)
		if i < len(d.Files) {
			for _, f := range d.Files[i] {
				fmt.Fprintf(w, "%*s  %s mentions %s\n", 2*i, "", f, d.Hashes[i])
			}
		}
	}
}

// RootReport is a root as `nexis store roots --json` lists it.
type RootReport struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// RootReports are roots as `nexis store roots` lists them.
type RootReports []RootReport

// Print writes one root a line.
func (rs RootReports) Print(w io.Writer) {
	for _, r := range rs {
		r.Print(w)
	}
}

// ListRoots lists every root with its logical path, sorted by name.
func (s *Store) ListRoots() (RootReports, error) {
	rs, err := s.Roots()
	if err != nil {
		return nil, err
	}
	out := RootReports{}
	for _, r := range rs {
		out = append(out, RootReport{r.Name, s.Logical(r.Path)})
	}
	return out, nil
}

// Print writes the root's name and path, tab-separated.
func (r RootReport) Print(w io.Writer) {
	fmt.Fprintf(w, "%s\t%s\n", r.Name, r.Path)
}
