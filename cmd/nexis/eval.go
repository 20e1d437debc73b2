package main

import (
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/internal/gcpace"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
)

var evalFlags struct {
	expr      string
	files     bool
	showTrace bool
	maxSteps  uint64
	maxDepth  int
	maxMemory int64 // MiB
	system    string
	stdenv    string
}

func init() {
	cmd := command("eval [CONFIG]", cobra.MaximumNArgs(1), runEval)
	f := cmd.Flags()
	f.StringVarP(&evalFlags.expr, "expr", "e", "", "evaluate `EXPR` in the config's environment and print the result")
	jsonFlag(cmd, "print JSON")
	f.BoolVar(&evalFlags.files, "files", false, "also print the content of every generated file")
	addEvalFlags(cmd)
	register(rootCmd, cmd)
}

// addEvalFlags adds the flags of every command that evaluates a config.
func addEvalFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&evalFlags.showTrace, "show-trace", false, "on error, show the whole Starlark stack, stdlib frames included")
	f.Uint64Var(&evalFlags.maxSteps, "max-steps", lang.DefaultMaxSteps, "stop an evaluation after `N` Starlark steps")
	f.IntVar(&evalFlags.maxDepth, "max-depth", lang.DefaultMaxDepth, "refuse TOML and Starlark values nested more than `N` deep")
	f.Int64Var(&evalFlags.maxMemory, "max-memory", lang.DefaultMaxMemory>>20, "stop an evaluation that allocates more than `MIB` mebibytes")
	f.StringVar(&evalFlags.system, "system", lang.DefaultSystem, "target `PLATFORM`")
	f.StringVar(&evalFlags.stdenv, "stdenv", "", "build with the stdenv the manifest `FILE` names (written by scripts/make-stdenv) instead of [nexis] stdenv")
}

// evaluate evaluates a config; an error is printed and becomes exit 1.
func evaluate(args []string) (*lang.System, error) {
	sys, err := evaluateQuiet(args)
	if err != nil {
		reportEvalError(os.Stderr, err)
		return nil, exitError{1}
	}
	return sys, nil
}

func reportEvalError(w io.Writer, err error) {
	io.WriteString(w, lang.FormatError(err, evalFlags.showTrace))
}

func runEval(cmd *cobra.Command, args []string) error {
	gcpace.Late(200)
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if evalFlags.expr != "" {
		v, err := sys.EvalExpr(evalFlags.expr)
		if err != nil {
			reportEvalError(os.Stderr, err)
			return exitError{1}
		}
		return lang.WriteValue(out, v, asJSON)
	}
	if asJSON {
		return lang.WriteJSON(out, sys.Drv)
	}
	if err := sys.WriteTree(out); err != nil {
		return err
	}
	if evalFlags.files {
		return lang.WriteFiles(out, sys.Drv)
	}
	return nil
}

// evaluateQuiet evaluates without printing errors: the caller reports.
func evaluateQuiet(args []string) (*lang.System, error) {
	opts, err := evalOptions()
	if err != nil {
		return nil, err
	}
	return lang.Eval(here.ConfigPath(args), opts)
}

// evalOptions are the evaluation options the command line sets.
func evalOptions() (lang.Options, error) {
	m, err := stdenv()
	if err != nil {
		return lang.Options{}, err
	}
	return lang.Options{
		StoreDir:  here.StoreDir(),
		System:    evalFlags.system,
		MaxSteps:  evalFlags.maxSteps,
		MaxDepth:  evalFlags.maxDepth,
		MaxMemory: evalFlags.maxMemory << 20,
		Print:     func(msg string) { os.Stderr.WriteString(msg + "\n") },
		Runaway:   runaway,
		Stdenv:    m.Spec(),
		// Unchanged packages come from the package cache (--no-eval-cache:
		// none); nexis eval prints a tree; only -e, -A and the repl ask for Globals.
		Cache: !switchNoEvalCache, PlanTree: running != nil && running.Name() == "eval" && evalFlags.expr == "" && !asJSON, NoGlobals: running != nil && running.Name() != "repl" && evalFlags.expr == "" && buildFlags.attr == "",
	}, nil
}

// runaway ends nexis when one step of an evaluation ran past what the
// evaluation itself can stop (see lang.Options.Runaway): a message, and
// no Go stack trace.
func runaway(msg string) {
	os.Stderr.WriteString("error: " + msg + "\n")
	os.Exit(1)
}

// stdenv is --stdenv's manifest (default $NEXIS_STDENV), read once;
// nil without one.
var stdenv = sync.OnceValues(func() (*realise.StdenvManifest, error) {
	file := evalFlags.stdenv
	if file == "" {
		file = os.Getenv("NEXIS_STDENV")
	}
	if file == "" {
		return nil, nil
	}
	return realise.LoadStdenvManifest(file)
})

// stdenvFiles are --stdenv's tarballs, which fetches of the stdenv take
// instead of downloading (nil without --stdenv).
func stdenvFiles() map[string]string {
	m, _ := stdenv()
	return m.LocalFiles()
}
