package repl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexisos/nexis/lang"
)

func session(t *testing.T) *Session {
	t.Helper()
	s := &Session{
		Load: func() (*lang.System, error) { return lang.Eval("../../examples/minimal/config.toml", lang.Options{}) },
		Out:  &bytes.Buffer{},
		Err:  &bytes.Buffer{},
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestComplete(t *testing.T) {
	s := session(t)
	for _, tc := range []struct {
		line, word string
		want       []string
	}{
		{"pack", "pack", []string{"packages"}},
		{"x = sys", "sys", []string{"system"}},
		{`packages["`, "", []string{`hello"]`, `motd"]`}},
		{`packages["mo`, "mo", []string{`motd"]`}},
		{`packages["hello"].ver`, "ver", []string{"version"}},
		{`system.o`, "o", []string{"out", "outputs"}},
		{`config["system"]["`, "", []string{`hostname"]`, `timezone"]`, `version"]`}},
		{":re", ":re", []string{":reload"}},
		// Calls are never evaluated for completion.
		{`len(packages).`, "", nil},
		{`derivation(name="x").`, "", nil},
	} {
		word, got := s.Complete(tc.line)
		if word != tc.word || !cmp.Equal(got, tc.want) {
			t.Errorf("Complete(%q) = %q, %q; want %q, %q", tc.line, word, got, tc.word, tc.want)
		}
	}
}

func TestReloadKeepsUserVariables(t *testing.T) {
	s := session(t)
	out := s.Out.(*bytes.Buffer)
	in := strings.NewReader("x = 41\n:reload\nx + 1\npackages[\"hello\"].name\n")
	if err := s.Run(in, false, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "42\n\"hello\"\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}
