package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// The remote half of `nexis switch`: --build-host builds on another
// machine and brings the closure here, --target-host copies the closure
// to another machine and activates it there with the remote nexis;
// --system-path (hidden) is what that remote nexis runs. The switch
// command itself belongs to activation (switch.go); this file adds its
// flags from an init that runs after switch.go's (files initialise in
// name order), so that neither file edits the other.
var remoteSwitchFlags struct {
	targetHost    string
	buildHost     string
	signKey       string
	remoteProgram string
	buildProgram  string
	systemPath    string
	configHash    string
}

func init() {
	var sw *cobra.Command
	for _, c := range rootCmd.Commands() {
		if c.Name() == "switch" {
			sw = c
		}
	}
	if sw == nil {
		panic("switch_remote.go: no switch command to extend") // a build mistake, not input
	}
	f := sw.Flags()
	f.StringVar(&remoteSwitchFlags.targetHost, "target-host", "", "copy the closure to `USER@HOST[:PORT]` over SSH and activate it there")
	f.StringVar(&remoteSwitchFlags.buildHost, "build-host", "", "build on `USER@HOST[:PORT]` over SSH and bring the closure here")
	signKeyFlag(sw, &remoteSwitchFlags.signKey)
	f.StringVar(&remoteSwitchFlags.remoteProgram, "remote-program", envOr("NEXIS_REMOTE_PROGRAM", "nexis"), "the shell `COMMAND` that runs nexis on the target host")
	f.StringVar(&remoteSwitchFlags.buildProgram, "build-program", "", "the shell `COMMAND` that runs nexis on the build host (default: --remote-program)")
	f.StringVar(&remoteSwitchFlags.systemPath, "system-path", "", "switch to the built system `PATH` (what --target-host runs remotely)")
	f.StringVar(&remoteSwitchFlags.configHash, "config-hash", "", "the identity of the config `HASH` --system-path was built from")
	f.MarkHidden("system-path")
	f.MarkHidden("config-hash")
	sw.Long += `

--target-host USER@HOST builds the system here (substituters included),
copies its closure to HOST over SSH (only the paths HOST lacks, signed
with --sign-key, which HOST must trust in its etc/nexis/trusted-keys),
then runs the remote nexis (--remote-program) to record and activate it
there, and prints what changed on HOST.

--build-host USER@HOST builds on HOST instead, as nexis build would there
(the config's substituters included). The config is evaluated here first;
then its whole directory travels to HOST as a tar (keep secrets out of
it; includes and sources outside it are refused), the nexis there
(--build-program, default --remote-program) builds it, and the closure
comes back, less the paths of the build this machine has already. HOST
signs it with its $NEXIS_SIGN_KEY (set it with e.g. --build-program "env
NEXIS_SIGN_KEY=/etc/nexis/build.secret nexis"), whose public key this
machine must trust in its etc/nexis/trusted-keys. With --target-host too,
the closure goes on from here to the target; without it, this machine
switches to it.

NEXIS_SSHOPTS holds extra ssh options.`
	local := sw.RunE
	sw.RunE = func(cmd *cobra.Command, args []string) error {
		remote := remoteSwitchFlags.targetHost != "" || remoteSwitchFlags.buildHost != ""
		switch {
		case remoteSwitchFlags.systemPath != "":
			if len(args) > 0 {
				return errors.New("--system-path takes no CONFIG: the system is built already")
			}
			return switchToSystemPath(remoteSwitchFlags.systemPath, remoteSwitchFlags.configHash)
		case remote && cmd.Flags().Changed("generation"):
			return errors.New("--generation switches to a generation recorded here: it builds nothing, so it takes no --build-host or --target-host")
		case remote:
			return switchRemote(args)
		}
		return local(cmd, args)
	}
}

// switchToSystemPath records and activates a system that is in the
// store already (copied there by a --target-host switch).
func switchToSystemPath(arg, configHash string) error {
	t, done, err := openTarget()
	if err != nil {
		return err
	}
	defer done()
	p, rest, err := t.Store.ParsePath(arg)
	if err != nil {
		return err
	}
	if rest != "" {
		return fmt.Errorf("--system-path %s: want a store path, not a file inside one", arg)
	}
	if ok, err := t.Store.IsValid(p); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%s is not in the store here: copy it first (nexis copy)", t.Store.Logical(p))
	}
	return switchAndPrint(t, p, configHash)
}

// switchAndPrint records and activates the built system p and prints
// what changed.
func switchAndPrint(t *activate.Target, p storepath.Path, configHash string) error {
	prev := activeSystem(t)
	res, err := t.Switch(p, switchOptions(activate.ModeSwitch, configHash))
	if err != nil {
		return err
	}
	printResult(t, res, prev)
	return nil
}

// remoteHosts are --build-host and --target-host; nil for one not given
// (built here, activated here).
type remoteHosts struct{ build, target *url.URL }

func parseRemoteHosts() (remoteHosts, error) {
	var h remoteHosts
	var err error
	if remoteSwitchFlags.buildHost != "" {
		if h.build, err = cache.ParseSSHHost(remoteSwitchFlags.buildHost); err != nil {
			return h, fmt.Errorf("--build-host: %w", err)
		}
	}
	if remoteSwitchFlags.targetHost != "" {
		if h.target, err = cache.ParseSSHHost(remoteSwitchFlags.targetHost); err != nil {
			return h, fmt.Errorf("--target-host: %w", err)
		}
	}
	return h, nil
}

// switchRemote builds the config here or on the build host, and
// activates it on the target host or here.
func switchRemote(args []string) error {
	h, err := parseRemoteHosts()
	if err != nil {
		return err
	}
	var key *sign.SecretKey
	if h.target != nil {
		// Before anything is built: without it nothing could be deployed.
		if key, err = loadSignKey(remoteSwitchFlags.signKey); err != nil {
			return err
		}
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if h.build != nil {
		// This machine's store is not held while the build host works.
		if err := buildThere(ctx, h.build, sys); err != nil {
			return err
		}
	}
	if h.target == nil {
		return switchFetched(ctx, h.build, sys)
	}
	st, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	var p storepath.Path
	if h.build != nil {
		p, err = fetchSystem(ctx, st, h.build, sys)
	} else {
		p, err = buildHere(ctx, st, sys)
	}
	if err != nil {
		return err
	}
	return deploy(ctx, st, h.target, key, sys, p)
}

// buildHere builds the system into st, as nexis build does, and holds
// it with a temporary root.
func buildHere(ctx context.Context, st *store.Store, sys *lang.System) (storepath.Path, error) {
	// The copy after reads the closure: no collector may take it.
	p, err := holdSystem(st, sys)
	if err != nil {
		return p, err
	}
	m, opts, err := systemBuild(sys)
	if err != nil {
		return p, err
	}
	builders, err := builderPool(sys)
	if err != nil {
		return p, err
	}
	defer builders.Close()
	opts.Remote = remote(builders)
	if _, err := m.Run(ctx, st, []*builtins.Derivation{sys.Drv}, opts); err != nil {
		return p, fmt.Errorf("the system was not built, nothing was copied or activated: %w", err)
	}
	return p, nil
}

// deploy copies the closure of the built system p to the target host,
// only the paths it lacks, and activates it there with the remote nexis,
// which prints what changed. It closes st.
func deploy(ctx context.Context, st *store.Store, u *url.URL, key *sign.SecretKey, sys *lang.System, p storepath.Path) error {
	opts := sshOptions(remoteSwitchFlags.remoteProgram)
	dest, err := cache.OpenDest(ctx, u.String(), opts)
	if err != nil {
		return err
	}
	stats, err := cache.Copy(ctx, st, dest, []storepath.Path{p}, cache.ExportOptions{
		Key:      key,
		Progress: transferProgress("copying to " + u.Host),
	})
	if cerr := dest.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("nothing was activated on %s: %w", u.Host, err)
	}
	fmt.Fprintf(os.Stderr, "nexis: copied %d of %d path(s) to %s (%s)\n", stats.Sent, stats.Closure, u.Host, humanBytes(stats.Bytes))
	// The store is not needed any more: release its lock before the
	// remote side runs (the remote may be this machine).
	if err := st.Close(); err != nil {
		return err
	}

	remote := []string{"switch", "--system-path", sys.Drv.Out(), "--config-hash", sys.Drv.ID()}
	if actFlags.force {
		remote = append(remote, "--force")
	}
	if actFlags.noHooks {
		remote = append(remote, "--no-hooks")
	}
	rc := cache.SSHCommand(ctx, u, opts, remote...)
	rc.Stdin, rc.Stdout, rc.Stderr = nil, os.Stdout, os.Stderr
	if err := rc.Run(); err != nil {
		return fmt.Errorf("activating on %s: %w (the closure is there; run nexis switch --target-host again)", u.Host, err)
	}
	return nil
}

// switchFetched brings the system the build host built into this
// machine's store and switches to it, as switch does with one built here.
func switchFetched(ctx context.Context, u *url.URL, sys *lang.System) error {
	t, done, err := openTargetFor(true)
	if err != nil {
		return err
	}
	defer done()
	p, err := fetchSystem(ctx, t.Store, u, sys)
	if err != nil {
		return err
	}
	return switchAndPrint(t, p, sys.Drv.ID())
}

func buildProgram() string {
	if remoteSwitchFlags.buildProgram != "" {
		return remoteSwitchFlags.buildProgram
	}
	return remoteSwitchFlags.remoteProgram
}

// buildThere sends the config's directory to the build host, builds it
// there with `nexis build --config-tar`, and checks that the build host
// built the system this machine evaluated.
func buildThere(ctx context.Context, u *url.URL, sys *lang.System) error {
	dir, rel, err := configToSend(sys)
	if err != nil {
		return err
	}
	remote := []string{"build", "--config-tar", rel, "--system", evalFlags.system, "--max-steps", strconv.FormatUint(evalFlags.maxSteps, 10)}
	if evalFlags.showTrace {
		remote = append(remote, "--show-trace")
	}
	if evalFlags.maxDepth != lang.DefaultMaxDepth {
		remote = append(remote, "--max-depth", strconv.Itoa(evalFlags.maxDepth))
	}
	if evalFlags.maxMemory != lang.DefaultMaxMemory>>20 {
		remote = append(remote, "--max-memory", strconv.FormatInt(evalFlags.maxMemory, 10))
	}
	if actFlags.jobs > 0 {
		remote = append(remote, "-j", strconv.Itoa(actFlags.jobs))
	}
	c := cache.SSHCommand(ctx, u, sshOptions(buildProgram()), remote...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, os.Stderr
	w, err := c.StdinPipe()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "nexis: building on %s (sending %s)\n", u.Host, dir)
	if err := c.Start(); err != nil {
		return fmt.Errorf("--build-host: starting ssh: %w", err)
	}
	sent := make(chan error, 1)
	go func() {
		err := sendConfigDir(w, dir)
		w.Close()
		sent <- err
	}()
	werr := c.Wait()
	// A send cut short because the build host stopped reading is its
	// failure, which it explained; any other is this side's.
	if serr := <-sent; serr != nil && !errors.Is(serr, syscall.EPIPE) && !errors.Is(serr, os.ErrClosed) {
		return fmt.Errorf("%w; nothing was built on %s or activated", serr, u.Host)
	}
	if werr != nil {
		return fmt.Errorf("building on %s: %w (the reason is above); nothing was activated", u.Host, werr)
	}
	if got, want := strings.TrimSpace(out.String()), sys.Drv.Out(); got != want {
		return fmt.Errorf("%s built %q, but the config evaluates to %s here: the build host evaluates it differently (another nexis version, or another store directory?); nothing was copied or activated", u.Host, got, want)
	}
	return nil
}

// configToSend is the directory that travels to the build host and the
// config's path in it. Includes and sources outside the directory would
// not be there: they are refused before anything runs. (Starlark modules
// and templates are not listed by the evaluation: one outside the
// directory fails on the build host as missing.)
func configToSend(sys *lang.System) (dir, rel string, err error) {
	dir = sys.Config.Dir
	for i, f := range sys.Config.Files {
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			return "", "", fmt.Errorf("the config includes %s, outside its directory %s: only that directory travels to the build host; move the file into it", f, dir)
		}
		if i == 0 {
			rel = f // the main file comes first
		}
	}
	var outside error
	eachDerivation(sys.Drv, func(d *builtins.Derivation) {
		for _, s := range d.Srcs {
			if r, err := filepath.Rel(dir, s.Abs); outside == nil && s.Abs != "" && (err != nil || !filepath.IsLocal(r)) {
				outside = fmt.Errorf("%s (a source of %s) is outside the config directory %s: only that directory travels to the build host; move it into it", s.Display, d.FullName(), dir)
			}
		}
	})
	return dir, rel, outside
}

// eachDerivation calls visit once for every derivation of root's build
// graph, root included.
func eachDerivation(root *builtins.Derivation, visit func(*builtins.Derivation)) {
	seen := map[string]bool{}
	var walk func(d *builtins.Derivation)
	walk = func(d *builtins.Derivation) {
		if seen[d.ID()] {
			return
		}
		seen[d.ID()] = true
		visit(d)
		for _, in := range d.Drvs {
			walk(in)
		}
	}
	walk(root)
}

// pathsHere lists the store paths of the system's build graph (outputs
// and sources) that st has already: the build host need not send them.
// Paths of its closure outside the graph are sent whether or not st has
// them; the import reads past those it has.
func pathsHere(st *store.Store, root *builtins.Derivation) ([]string, error) {
	var have []string
	var err error
	check := func(full string) {
		if err != nil {
			return
		}
		p, _, perr := storepath.Parse(st.LogicalDir(), full)
		if perr != nil {
			return // not a path of this store: the export would send it
		}
		var ok bool
		if ok, err = st.IsValid(p); ok {
			have = append(have, full)
		}
	}
	eachDerivation(root, func(d *builtins.Derivation) {
		for _, o := range d.Outputs {
			out, _ := d.OutputPath(o)
			check(out)
		}
		for _, s := range d.Srcs {
			check(s.Path)
		}
	})
	return have, err
}

// fetchSystem imports the closure of the built system from the build
// host into st and returns its path, held by a temporary root. The build
// host signs the paths with its own key; st accepts only paths signed by
// a key this machine trusts. (Between its build and this export the build
// host holds no root on the system: a collection there in between fails
// the export, and a second switch builds again.)
func fetchSystem(ctx context.Context, st *store.Store, u *url.URL, sys *lang.System) (storepath.Path, error) {
	p, err := holdSystem(st, sys)
	if err != nil {
		return p, err
	}
	trusted, err := trustedKeys()
	if err != nil {
		return p, err
	}
	have, err := pathsHere(st, sys.Drv)
	if err != nil {
		return p, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := cache.SSHCommand(ctx, u, sshOptions(buildProgram()), "store", "export", "-r", "--except-from", "-", sys.Drv.Out())
	c.Stdin = strings.NewReader(strings.Join(have, "\n") + "\n")
	c.Stderr = os.Stderr
	r, err := c.StdoutPipe()
	if err != nil {
		return p, err
	}
	if err := c.Start(); err != nil {
		return p, fmt.Errorf("--build-host: starting ssh: %w", err)
	}
	stats, ierr := cache.Import(st, r, trusted)
	if ierr != nil {
		cancel() // the export may be blocked on what is no longer read
	}
	if err := fetchError(u, c.Wait(), ierr); err != nil {
		return p, err
	}
	if ok, err := st.IsValid(p); err != nil {
		return p, err
	} else if !ok {
		return p, fmt.Errorf("%s sent the closure of %s without the path itself; nothing was activated", u.Host, sys.Drv.Out())
	}
	closure, err := st.Closure([]storepath.Path{p})
	if err != nil {
		return p, err
	}
	fmt.Fprintf(os.Stderr, "nexis: copied %d of %d path(s) from %s (%s)\n", stats.Registered, len(closure), u.Host, humanBytes(stats.Bytes))
	return p, nil
}

// fetchError explains a failed fetch: the export's own failure (it exited
// by itself, and said why on stderr) or the import's.
func fetchError(u *url.URL, werr, ierr error) error {
	var exit *exec.ExitError
	switch {
	case werr != nil && errors.As(werr, &exit) && exit.Exited():
		return fmt.Errorf("exporting the system on %s: %w (the reason is above; the build host signs with its $NEXIS_SIGN_KEY, which e.g. --build-program \"env NEXIS_SIGN_KEY=FILE nexis\" sets); nothing was activated", u.Host, werr)
	case errors.Is(ierr, sign.ErrUntrusted):
		return fmt.Errorf("receiving the system from %s: %w: this machine accepts only paths signed by a key in %s (add the build host's public key there: nexis key public SECRET-FILE prints it); nothing was activated", u.Host, ierr, sign.TrustedFileIn(flagRoot))
	case ierr != nil:
		return fmt.Errorf("receiving the system from %s: %w; nothing was activated", u.Host, ierr)
	case werr != nil:
		return fmt.Errorf("exporting the system on %s: %w; nothing was activated", u.Host, werr)
	}
	return nil
}

// holdSystem is the evaluated system's store path, held by a temporary
// root from now on (valid or not yet).
func holdSystem(st *store.Store, sys *lang.System) (storepath.Path, error) {
	p, _, err := storepath.Parse(st.LogicalDir(), sys.Drv.Out())
	if err != nil {
		return p, err
	}
	return p, st.AddTempRoots(p)
}
