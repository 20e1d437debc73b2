package realise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise/sandbox"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// job is one run of one derivation's builder.
type job struct {
	s   *scheduler
	d   *builtins.Derivation
	uid int // build user (sandboxed builds only)
	dir string
	log *buildLog

	inputs    []storepath.Path // closure(), computed once
	inputsSet bool
}

// sandboxBuildDir is where the build directory appears in the sandbox.
const sandboxBuildDir = "/build"

// realise runs the builder and ingests its outputs.
func (j *job) realise() (Status, error) {
	outs, status, cleanup, err := j.produce()
	defer cleanup()
	if err != nil {
		return Failed, err
	}
	if err := j.ingest(outs); err != nil {
		return Failed, err
	}
	j.s.opts.Reporter.Finished(j.d, status)
	return status, nil
}

// rebuildHash runs the builder again and returns the tree hash of the
// main output, registering nothing.
func (j *job) rebuildHash() (string, error) {
	outs, _, cleanup, err := j.produce()
	defer cleanup()
	if err != nil {
		return "", err
	}
	h, err := treehash.TreeHash(outs[j.d.Outputs[0]])
	if err != nil {
		return "", err
	}
	return h.Hex(), nil
}

// produce runs the builder; outs maps each output name to the finished
// tree on the store's filesystem.
func (j *job) produce() (outs map[string]string, status Status, cleanup func(), err error) {
	cleanup = func() {}
	d := j.d
	dir, err := os.MkdirTemp(j.s.opts.BuildDir, safeName(d.FullName())+"-")
	if err != nil {
		return nil, Failed, cleanup, fmt.Errorf("build directory: %w", err)
	}
	j.dir = dir
	log, err := openLog(j.s.opts.LogDir, d, j.s.opts.Reporter)
	if err != nil {
		os.RemoveAll(dir)
		return nil, Failed, cleanup, err
	}
	j.log = log
	cleanup = func() {
		log.Close()
		removeAll(dir)
	}
	ctx := j.s.ctx
	timeout := j.s.opts.Timeout
	if d.Timeout > 0 {
		timeout = time.Duration(d.Timeout) * time.Second
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timed out after %s", timeout))
		prev := cleanup
		cleanup = func() { cancel(); prev() }
	}
	kind := "build"
	status = Built
	switch {
	case d.Fixed != nil:
		kind, status = "fetch", Fetched
	case builtins.IsBuiltin(d.Builder):
		kind = "write"
	}
	j.s.opts.Reporter.Started(d, kind)
	switch d.Builder {
	case builtins.BuilderFetchURL:
		outs, err = j.fetchURL(ctx)
	case builtins.BuilderFetchGit:
		outs, err = j.fetchGit(ctx)
	case builtins.BuilderWriteFile:
		outs, err = j.writeFile()
	case builtins.BuilderCopy:
		outs, err = j.copyInput()
	case builtins.BuilderSystem:
		outs, err = j.system()
	default:
		if builtins.IsBuiltin(d.Builder) {
			return nil, Failed, cleanup, fmt.Errorf("unknown builder %s (this nexis knows builtin:fetchurl, builtin:fetchgit, builtin:write_file, builtin:copy and builtin:system)", d.Builder)
		}
		outs, err = j.sandboxed(ctx)
	}
	if err != nil && ctx.Err() != nil && j.s.ctx.Err() == nil {
		// Our own timeout, not a cancellation of the run.
		err = fmt.Errorf("%w", context.Cause(ctx))
	}
	return outs, status, cleanup, err
}

// closure is the store closure of d's inputs: what the build may see and
// the only paths its outputs may refer to (besides themselves).
func (j *job) closure() ([]storepath.Path, error) {
	if j.inputsSet {
		return j.inputs, nil
	}
	var roots []storepath.Path
	for _, in := range j.d.Drvs {
		for _, o := range in.Outputs {
			p, err := outputPath(in, o)
			if err != nil {
				return nil, err
			}
			roots = append(roots, p)
		}
	}
	for _, src := range j.d.Srcs {
		p, _, err := storepath.Parse(j.d.Store, src.Path)
		if err != nil {
			return nil, err
		}
		roots = append(roots, p)
	}
	if len(roots) == 0 {
		j.inputsSet = true
		return nil, nil
	}
	c, err := j.s.st.Closure(roots)
	if err != nil {
		return nil, fmt.Errorf("input closure: %w", err)
	}
	j.inputs, j.inputsSet = c, true
	return c, nil
}

func (j *job) sandboxed(ctx context.Context) (map[string]string, error) {
	if err := sandbox.Available(); err != nil {
		return nil, err
	}
	d := j.d
	closure, err := j.closure()
	if err != nil {
		return nil, err
	}
	st := j.s.st
	usr, err := j.usrLayers(closure)
	if err != nil {
		return nil, err
	}
	if len(usr) == 0 && d.Getenv(SandboxPathsEnv) == "" && !strings.HasPrefix(d.Builder, st.LogicalDir()+"/") {
		// Nothing but store paths is in this sandbox.
		return nil, fmt.Errorf("builder %s is not in the sandbox: a build sees only its inputs, and this one names no stdenv (make it with stdenv_derivation or build_package, or give the builder as a store path; see docs/build-model.md)", d.Builder)
	}
	build := filepath.Join(j.dir, "build")
	root := filepath.Join(j.dir, "root")
	for _, p := range []string{build, root} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Chown(build, j.uid, j.uid); err != nil {
		return nil, err
	}
	spec := &sandbox.Spec{
		RootDir:   root,
		Args:      append([]string{d.Builder}, d.Args...),
		Dir:       sandboxBuildDir,
		Usr:       usr,
		HostPaths: strings.Fields(d.Getenv(SandboxPathsEnv)),
		Network:   d.Fixed != nil,
		UID:       j.uid,
		GID:       j.uid,
		Hostname:  sandbox.HostName,
	}
	for _, p := range closure {
		spec.Binds = append(spec.Binds, sandbox.Bind{Source: st.Physical(p), Target: st.Logical(p)})
	}
	outs := map[string]string{}
	env := map[string]string{
		"PATH":              "/usr/bin:/bin",
		"HOME":              "/homeless-shelter",
		"TMPDIR":            sandboxBuildDir,
		"TMP":               sandboxBuildDir,
		"TEMP":              sandboxBuildDir,
		"TEMPDIR":           sandboxBuildDir,
		"NEXIS_BUILD_TOP":   sandboxBuildDir,
		"SOURCE_DATE_EPOCH": "1",
		"TERM":              "dumb",
		"TZ":                "UTC",
		"LC_ALL":            "C",
	}
	for _, e := range d.Env {
		env[e.Name] = e.Value
	}
	for i, o := range d.Outputs {
		p, err := outputPath(d, o)
		if err != nil {
			return nil, err
		}
		phys := filepath.Join(j.dir, "out-"+strconv.Itoa(i))
		if err := os.Mkdir(phys, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(phys, j.uid, j.uid); err != nil {
			return nil, err
		}
		outs[o] = phys
		spec.Binds = append(spec.Binds, sandbox.Bind{Source: phys, Target: st.Logical(p), Writable: true})
		env[o] = st.Logical(p)
	}
	spec.Binds = append(spec.Binds, sandbox.Bind{Source: build, Target: sandboxBuildDir, Writable: true})
	env["NEXIS_BUILD_CORES"] = strconv.Itoa(j.s.opts.Cores)
	env["NEXIS_STORE"] = st.LogicalDir()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec.Env = append(spec.Env, k+"="+env[k])
	}
	if err := sandbox.Run(ctx, spec, j.log); err != nil {
		return nil, err
	}
	for _, phys := range outs {
		if err := ownByRoot(phys); err != nil {
			return nil, err
		}
	}
	if d.Fixed != nil {
		if err := j.checkFixedTree(outs[d.Outputs[0]]); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// The derivation env keys realise reads besides running the builder.
const (
	// LayersEnv lists store paths (inputs of the derivation) whose usr/
	// trees are merged at /usr in the sandbox, the first winning: the
	// stdenv and the tool layers a build asked for.
	LayersEnv = "NEXIS_FHS_LAYERS"
	// SandboxPathsEnv lists host paths the build sees read-only
	// ([nexis] sandbox_paths). They are in the derivation, so they are
	// in its identity, and its outputs are impure (impure.go).
	SandboxPathsEnv = "NEXIS_SANDBOX_PATHS"
)

// checkSystem refuses to run a builder of another system: its output
// would be stored under an identity that says what it is not.
func checkSystem(d *builtins.Derivation) error {
	if d.Fixed != nil || builtins.IsBuiltin(d.Builder) || d.System == HostSystem() {
		return nil
	}
	return fmt.Errorf("%s is for %s, and this machine builds for %s: nexis does not cross-build; build it on a %s machine (switch --build-host) or evaluate with --system %s", d.FullName(), d.System, HostSystem(), d.System, HostSystem())
}

// HostSystem is the system this machine builds for, as derivations name
// it ("x86_64-linux").
func HostSystem() string {
	arch := runtime.GOARCH
	switch arch {
	case "amd64":
		arch = "x86_64"
	case "arm64":
		arch = "aarch64"
	}
	return arch + "-" + runtime.GOOS
}

// usrLayers maps LayersEnv to the layers' usr/ directories on this
// machine. A layer must be in the build's input closure: what a build
// sees is what its identity names.
func (j *job) usrLayers(closure []storepath.Path) ([]string, error) {
	names := strings.Fields(j.d.Getenv(LayersEnv))
	if len(names) == 0 {
		return nil, nil
	}
	in := make(map[string]storepath.Path, len(closure))
	for _, p := range closure {
		in[j.s.st.Logical(p)] = p
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		p, ok := in[n]
		if !ok {
			return nil, fmt.Errorf("%s names %s, which is not an input of %s", LayersEnv, n, j.d.FullName())
		}
		usr := filepath.Join(j.s.st.Physical(p), "usr")
		if st, err := os.Stat(usr); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("layer %s has no usr/ directory: not a stdenv layer (see docs/build-model.md)", n)
		}
		out = append(out, usr)
	}
	return out, nil
}

// checkFixedTree verifies a fixed-output build made by a program: its
// hash is the tree hash of the output.
func (j *job) checkFixedTree(p string) error {
	f := j.d.Fixed
	if f.Algo != "blake3" {
		return fmt.Errorf("a fixed-output derivation built by %s must give a blake3 tree hash, not %s", j.d.Builder, f.Algo)
	}
	h, err := treehash.TreeHash(p)
	if err != nil {
		return err
	}
	if h.Hex() != f.Hash {
		return fmt.Errorf("%w in fixed-output derivation %s:\n  specified: blake3:%s\n  got:       blake3:%s", ErrHashMismatch, j.d.FullName(), f.Hash, h.Hex())
	}
	return nil
}

// ownByRoot hands a build user's output to root before it enters the
// store: stored paths are owned by root, and the build user must not be
// able to change them afterwards.
func ownByRoot(root string) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 0, 0)
	})
}

// ingest registers all outputs in one batch, with references among the
// input closure and the outputs themselves.
func (j *job) ingest(outs map[string]string) error {
	d := j.d
	closure, err := j.closure()
	if err != nil {
		return err
	}
	var targets []storepath.Path
	for _, o := range d.Outputs {
		p, err := outputPath(d, o)
		if err != nil {
			return err
		}
		targets = append(targets, p)
	}
	cands := append(append([]storepath.Path{}, closure...), targets...)
	ca := ""
	if c, ok := d.ContentAddress(); ok {
		ca = c.String()
	}
	impure, err := j.impurity(closure)
	if err != nil {
		return err
	}
	// A secret is private from the moment it is in the store: never
	// shared with a public copy of the same bytes, never readable.
	private := d.WritesSecret()
	reqs := make([]store.IngestRequest, 0, len(targets))
	for i, o := range d.Outputs {
		src, ok := outs[o]
		if !ok {
			return fmt.Errorf("builder produced no output %q", o)
		}
		if _, err := os.Lstat(src); err != nil {
			return fmt.Errorf("builder produced no output %q: %w", o, err)
		}
		reqs = append(reqs, store.IngestRequest{Src: src, Target: targets[i], IngestOptions: store.IngestOptions{
			RefCandidates: cands, Deriver: d.ID(), ContentAddress: ca, Move: true, Private: private, Impure: impure,
		}})
	}
	if _, err := j.s.st.IngestBatch(reqs); err != nil {
		return fmt.Errorf("registering the outputs: %w", err)
	}
	return nil
}

// safeName keeps a build directory name readable and harmless.
func safeName(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '/' || r < ' ' {
			return '_'
		}
		return r
	}, s)
}

// removeAll removes a build directory, which may hold read-only
// directories a builder left.
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}
