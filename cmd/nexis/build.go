package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store/storepath"
)

var buildFlags struct {
	attr       string
	outLink    string
	noOutLink  bool
	dryRun     bool
	jobs       int
	keepGoing  bool
	printLogs  bool
	timeout    time.Duration
	check      bool
	checkRoots bool
	json       bool
	configTar  string
}

func init() {
	cmd := &cobra.Command{
		Use:   "build [CONFIG]",
		Short: "Build the system (or one package) into the store",
		Long: `Evaluate a config and realise it: fetch sources, build what is not in the
store yet in sandboxes, -j at a time, and print the output path(s).

-A builds one package (a name from [[packages]], or a Starlark expression
that gives a derivation) instead of the whole system. --out-link makes a
symlink to the output that is also a GC root; it replaces only an earlier
out-link (a link into the store), never a file, a directory or another
link. --dry-run lists what would be fetched and built. --check rebuilds
every derivation of the closure this machine builds (not fetches) and
says whether each result is bit-identical to what the store holds;
--check-roots rebuilds only the outputs named.

Builds see only their inputs: the stdenv (the toolchain, a store path
named by its hash, see docs/build-model.md), the packages they depend on,
their sources. --stdenv FILE evaluates with the stdenv a manifest made by
scripts/make-stdenv names, and takes its tarballs from beside FILE.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runBuild,
	}
	f := cmd.Flags()
	f.StringVarP(&buildFlags.attr, "attr", "A", "", "build package `ATTR` (a name or an expression) instead of the system")
	f.StringVarP(&buildFlags.outLink, "out-link", "o", "result", "make `PATH` a symlink to the output, registered as a GC root")
	f.BoolVar(&buildFlags.noOutLink, "no-out-link", false, "make no out-link")
	f.BoolVar(&buildFlags.dryRun, "dry-run", false, "list what would be fetched and built, and stop")
	f.IntVarP(&buildFlags.jobs, "jobs", "j", runtime.NumCPU(), "run `N` builds at once")
	f.BoolVarP(&buildFlags.keepGoing, "keep-going", "k", false, "keep building what does not depend on a failed build")
	f.BoolVarP(&buildFlags.printLogs, "print-build-logs", "L", false, "print the builds' logs as they run")
	f.DurationVar(&buildFlags.timeout, "timeout", 0, "stop a build that runs longer than `DURATION` (0: no limit; a package's own timeout wins)")
	f.BoolVar(&buildFlags.check, "check", false, "rebuild every valid derivation of the closure this machine builds and report whether each is bit-identical")
	f.BoolVar(&buildFlags.checkRoots, "check-roots", false, "like --check, for the outputs named only")
	f.BoolVar(&buildFlags.json, "json", false, "print the result as JSON")
	f.StringVar(&buildFlags.configTar, "config-tar", "", "read the config's directory as a tar from stdin and build the config `FILE` in it, with no out-link (what switch --build-host runs)")
	f.MarkHidden("config-tar")
	addEvalFlags(cmd)
	rootCmd.AddCommand(cmd)
}

// buildTarget picks what to build: the system, or -A's package.
func buildTarget(sys *lang.System) (*builtins.Derivation, error) {
	if buildFlags.attr == "" {
		return sys.Drv, nil
	}
	if v, ok, _ := sys.Packages.Get(starlark.String(buildFlags.attr)); ok {
		return v.(*builtins.Derivation), nil
	}
	v, err := sys.EvalExpr(buildFlags.attr)
	if err != nil {
		return nil, fmt.Errorf("-A %s: not a package of the config, and as an expression: %w", buildFlags.attr, err)
	}
	d, ok := v.(*builtins.Derivation)
	if !ok {
		return nil, fmt.Errorf("-A %s gives a %s, want a derivation", buildFlags.attr, v.Type())
	}
	return d, nil
}

func runBuild(cmd *cobra.Command, args []string) error {
	if buildFlags.configTar != "" {
		if len(args) > 0 {
			return errors.New("--config-tar takes no CONFIG: it names the config inside the tar on stdin")
		}
		state, err := here.PhysicalStateDir()
		if err != nil {
			return err
		}
		cfg, cleanup, err := deploy.ReceiveConfigIn(filepath.Join(state, "build-configs"), os.Stdin, buildFlags.configTar)
		if err != nil {
			return err
		}
		defer cleanup()
		args = []string{cfg}
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	target, err := buildTarget(sys)
	if err != nil {
		return err
	}
	if buildFlags.dryRun {
		return dryRun(target)
	}
	st, err := here.OpenStore()
	if err != nil {
		return err
	}
	defer st.Close()

	b := newBuild(sys)
	b.PrintLogs = buildFlags.printLogs
	b.Tune = func(o *realise.Options) {
		o.Jobs, o.KeepGoing, o.Timeout = buildFlags.jobs, buildFlags.keepGoing, buildFlags.timeout
		o.Check, o.CheckRoots = buildFlags.check, buildFlags.checkRoots
	}
	m, opts, release, err := b.Builder()()
	if err != nil {
		return err
	}
	defer release()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := m.Run(ctx, st, []*builtins.Derivation{target}, opts)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "nexis: interrupted; nothing partial was registered")
			return exitError{130}
		}
		if errors.Is(err, realise.ErrFailed) {
			return exitError{1}
		}
		return err
	}
	// A --config-tar build runs for another machine, which takes the
	// output away: a link in the ssh login's directory would only pin it.
	if !buildFlags.noOutLink && buildFlags.outLink != "" && !buildFlags.check && !buildFlags.checkRoots && buildFlags.configTar == "" {
		p, _, err := storepath.Parse(st.LogicalDir(), target.Out())
		if err != nil {
			return err
		}
		if err := realise.OutLink(st, p, buildFlags.outLink); err != nil {
			return err
		}
	}
	differs := false
	for _, c := range res.Checks {
		if c.Damaged != "" {
			differs = true
			fmt.Fprintf(os.Stderr, "nexis: check: the store's copy of %s is damaged: %s (the rebuild hashes to blake3:%s, registered blake3:%s); nexis store verify --check-contents --repair restores it\n", c.Path, c.Damaged, c.Got, c.Want)
			continue
		}
		if c.Identical {
			fmt.Fprintf(os.Stderr, "nexis: check: %s is bit-identical when rebuilt\n", c.Path)
		} else {
			differs = true
			fmt.Fprintf(os.Stderr, "nexis: check: %s differs when rebuilt:\n  registered tree: blake3:%s\n  rebuilt tree:    blake3:%s\n", c.Path, c.Want, c.Got)
		}
	}
	if buildFlags.json {
		type out struct {
			Outputs     map[string]string `json:"outputs"`
			Built       int               `json:"built"`
			Fetched     int               `json:"fetched"`
			Substituted int               `json:"substituted"`
			Checks      []realise.Check   `json:"checks,omitempty"`
		}
		o := out{Outputs: map[string]string{}, Built: res.Count(realise.Built), Fetched: res.Count(realise.Fetched), Substituted: res.Count(realise.Substituted)}
		for _, name := range target.Outputs {
			o.Outputs[name], _ = target.OutputPath(name)
		}
		if err := printJSON(o); err != nil {
			return err
		}
	} else {
		for _, name := range target.Outputs {
			p, _ := target.OutputPath(name)
			fmt.Println(p)
		}
	}
	if differs {
		return exitError{1}
	}
	return nil
}

func dryRun(target *builtins.Derivation) error {
	st, err := here.OpenStoreRead()
	if err != nil {
		// A store nothing was added to yet: everything is to do, which
		// a fresh (writable) open tells just as well.
		if st, err = here.OpenStore(); err != nil {
			return err
		}
	}
	defer st.Close()
	plan, err := realise.MakePlan(st, []*builtins.Derivation{target})
	if err != nil {
		return err
	}
	if buildFlags.json {
		paths := func(ds []*builtins.Derivation) []string {
			out := []string{}
			for _, d := range ds {
				out = append(out, d.Out())
			}
			return out
		}
		return printJSON(map[string][]string{"fetch": paths(plan.Fetch), "build": paths(plan.Build)})
	}
	section := func(title string, ds []*builtins.Derivation) {
		if len(ds) == 0 {
			return
		}
		fmt.Printf("%s (%d):\n", title, len(ds))
		for _, d := range ds {
			fmt.Printf("  %s\n", d.Out())
		}
	}
	section("these would be fetched", plan.Fetch)
	section("these would be built", plan.Build)
	if len(plan.Fetch)+len(plan.Build) == 0 {
		fmt.Printf("nothing to do: %s is valid\n", target.Out())
	}
	return nil
}
