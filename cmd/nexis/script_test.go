package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nexisos/nexis/realise/stdenvtest"
)

// TestMain lets testscript run this test binary as the nexis command, so
// the scripts exercise the real CLI end to end.
//
// Builds use the stdenv scripts/make-stdenv made on this machine
// ($NEXIS_STDENV, which nexis reads as the default of --stdenv), never
// a download.
func TestMain(m *testing.M) {
	if os.Getenv("NEXIS_STDENV") == "" {
		if p, err := stdenvtest.ManifestPath(); err == nil {
			os.Setenv("NEXIS_STDENV", p)
		}
	}
	testscript.Main(m, map[string]func(){
		"nexis": func() { os.Exit(run()) },
	})
}

// TestScripts runs every testdata/script/*.txtar. $EXAMPLES is the
// repository's examples directory; each script gets its own $WORK, and
// NEXIS_ROOT points into it so no script touches this machine's /store.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			env.Setenv("NEXIS_ROOT", filepath.Join(env.WorkDir, "root"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("NEXIS_STDENV", os.Getenv("NEXIS_STDENV"))
			return nil
		},
	})
}
