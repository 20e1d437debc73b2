package realise

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/nexisos/nexis/store"
)

// StdenvLayer is one tarball of a stdenv manifest: the store name the
// stdlib gives it, its file beside the manifest, where it is published
// and its sha256.
type StdenvLayer struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// StdenvManifest is what scripts/make-stdenv writes beside its tarballs
// (stdenv-<system>.json): the shape of [nexis] stdenv, so evaluation can
// use it as is (lang.Options.Stdenv), plus each tarball's file name.
type StdenvManifest struct {
	Version string `json:"version"`
	System  string `json:"system"`
	StdenvLayer
	Tools map[string]StdenvLayer `json:"tools"`

	path string
	raw  map[string]any
}

// LoadStdenvManifest reads a manifest.
func LoadStdenvManifest(path string) (*StdenvManifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stdenv manifest: %w", err)
	}
	m := &StdenvManifest{path: path}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("stdenv manifest %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &m.raw); err != nil {
		return nil, fmt.Errorf("stdenv manifest %s: %w", path, err)
	}
	if m.SHA256 == "" || m.Name == "" || m.File == "" {
		return nil, fmt.Errorf("stdenv manifest %s: want name, file and sha256 (a file written by scripts/make-stdenv)", path)
	}
	return m, nil
}

// Dir is the directory the manifest and its tarballs are in.
func (m *StdenvManifest) Dir() string { return filepath.Dir(m.path) }

// Spec is the manifest as evaluation takes it (lang.Options.Stdenv);
// nil for no manifest.
func (m *StdenvManifest) Spec() map[string]any {
	if m == nil {
		return nil
	}
	return m.raw
}

// LocalFiles maps each tarball's hash to its file (Options.LocalFiles):
// builds then take what they need from beside the manifest, unpacking
// only the layers they use. No manifest has none.
func (m *StdenvManifest) LocalFiles() map[string]string {
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for _, l := range m.layers() {
		out["sha256:"+l.SHA256] = filepath.Join(m.Dir(), l.File)
	}
	return out
}

func (m *StdenvManifest) layers() []StdenvLayer {
	layers := []StdenvLayer{m.StdenvLayer}
	names := make([]string, 0, len(m.Tools))
	for n := range m.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		layers = append(layers, m.Tools[n])
	}
	return layers
}

// AddTo puts every tarball of the manifest into st, unpacked, at the
// fixed-output path evaluation computes for it (see AddFixed), and
// checks each against the hash the manifest names. It returns how many
// were added (not valid before).
func (m *StdenvManifest) AddTo(st *store.Store) (int, error) {
	added := 0
	for _, l := range m.layers() {
		file := filepath.Join(m.Dir(), l.File)
		_, _, ok, err := AddFixed(st, file, l.Name, true, l.SHA256)
		if err != nil {
			return added, fmt.Errorf("%w (named by %s: make the stdenv again with scripts/make-stdenv)", err, m.path)
		}
		if ok {
			added++
		}
	}
	return added, nil
}
