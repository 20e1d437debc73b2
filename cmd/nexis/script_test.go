package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run this test binary as the nexis command, so
// the scripts exercise the real CLI end to end.
func TestMain(m *testing.M) {
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
			return nil
		},
	})
}
