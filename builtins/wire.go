package builtins

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
)

// A derivation travels to another machine (a remote builder) as its
// closure: one JSON array, inputs before the derivations that use them,
// each element the canonical encoding (the bytes its identity is the
// hash of) and the few fields outside the identity the builder needs:
//
//	[{"drv": <canonical encoding>, "timeout": <seconds>}, ...]
//
// The receiver rebuilds every derivation from its encoding and checks
// that it encodes to the same bytes, so the identities, and with them
// the output paths, are the receiver's own computation: a sender cannot
// make a builder register an output under a path its derivation does
// not name.

type wireDrv struct {
	Drv     json.RawMessage `json:"drv"`
	Timeout int             `json:"timeout,omitempty"`
}

// MarshalClosure encodes d and every derivation it depends on.
func MarshalClosure(d *Derivation) ([]byte, error) {
	c := Closure(d)
	out := make([]wireDrv, len(c))
	for i, x := range c {
		out[i] = wireDrv{Drv: x.Encoding(), Timeout: x.Timeout}
	}
	// Not json.Marshal: it would escape <, > and & inside the
	// encodings, which are then no longer the bytes that were hashed.
	return CanonicalJSON(out)
}

// MaxWireDerivations bounds the closure UnmarshalClosure accepts.
const MaxWireDerivations = 1 << 20

// UnmarshalClosure decodes what MarshalClosure made and returns the
// last derivation (the one the closure was made of). Passthru is empty:
// it is the evaluation's, not the build's.
func UnmarshalClosure(b []byte) (*Derivation, error) {
	var in []wireDrv
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("derivation closure: %w", err)
	}
	if len(in) == 0 || len(in) > MaxWireDerivations {
		return nil, fmt.Errorf("derivation closure: %d derivations", len(in))
	}
	byID := make(map[string]*Derivation, len(in))
	var last *Derivation
	for i, w := range in {
		d, err := decodeDerivation(w.Drv, byID)
		if err != nil {
			return nil, fmt.Errorf("derivation closure, item %d: %w", i+1, err)
		}
		d.Timeout = w.Timeout
		byID[d.id] = d
		last = d
	}
	return last, nil
}

// wireEncoding is the canonical encoding (doc.go) as JSON decodes it;
// decodeDerivation re-encodes what it decoded and compares bytes, so a
// field this struct lacked would be caught as a non-canonical encoding.
type wireEncoding struct {
	Name    string            `json:"name"`
	Version string            `json:"version"`
	System  string            `json:"system"`
	Store   string            `json:"store"`
	Builder string            `json:"builder"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Inputs  struct {
		Drvs []struct {
			ID      string   `json:"id"`
			Outputs []string `json:"outputs"`
		} `json:"drvs"`
		Srcs []struct {
			Path string `json:"path"`
			Hash string `json:"hash"`
		} `json:"srcs"`
	} `json:"inputs"`
	Outputs []string `json:"outputs"`
	Fixed   *Fixed   `json:"fixed,omitempty"`
}

func decodeDerivation(enc []byte, byID map[string]*Derivation) (*Derivation, error) {
	var e wireEncoding
	dec := json.NewDecoder(bytes.NewReader(enc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, err
	}
	if len(e.Outputs) == 0 {
		return nil, fmt.Errorf("%s: no outputs", e.Name)
	}
	for _, o := range e.Outputs {
		if !validOutputName(o) {
			return nil, fmt.Errorf("%s: bad output name %q", e.Name, o)
		}
	}
	d := &Derivation{
		Name: e.Name, Version: e.Version, System: e.System, Store: e.Store,
		Builder: e.Builder, Args: e.Args, Env: EnvFromMap(e.Env), Outputs: e.Outputs, Fixed: e.Fixed,
	}
	for _, in := range e.Inputs.Drvs {
		x, ok := byID[in.ID]
		if !ok {
			return nil, fmt.Errorf("%s: input %s comes later or not at all", d.FullName(), in.ID)
		}
		d.Drvs = append(d.Drvs, x)
	}
	for _, s := range e.Inputs.Srcs {
		d.Srcs = append(d.Srcs, &Source{Name: path.Base(s.Path), TreeHash: s.Hash, Path: s.Path, Display: s.Path})
	}
	if !d.sealChecked(d.FullName(), enc) {
		return nil, fmt.Errorf("%s: not a canonical encoding (made by another version of nexis?)", d.FullName())
	}
	return d, nil
}
