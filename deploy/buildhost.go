package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// BuildHost is a machine that builds a config for this one (switch
// --build-host): its nexis is reached over ssh, builds the config
// directory it is sent as `nexis build --config-tar`, and sends the
// closure back, signed with its own key.
type BuildHost struct {
	URL *url.URL
	// SSH reaches it; its RemoteProgram runs the build host's nexis.
	SSH cache.SSHOptions
	// EvalArgs are the evaluation flags the build repeats there
	// (--system, --max-steps, ...), so that it evaluates as here.
	EvalArgs []string
	// Stderr gets what the build host says, and what is not sent.
	Stderr io.Writer
	// TrustedFile names this machine's trusted keys, for messages.
	TrustedFile string
}

// Build sends the config's directory to the build host, builds it there
// with `nexis build --config-tar`, and checks that the build host built
// the system this machine evaluated.
func (h *BuildHost) Build(ctx context.Context, sys System) error {
	rel, err := configToSend(sys)
	if err != nil {
		return err
	}
	remote := append([]string{"build", "--config-tar", rel}, h.EvalArgs...)
	c := cache.SSHCommand(ctx, h.URL, h.SSH, remote...)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, h.Stderr
	w, err := c.StdinPipe()
	if err != nil {
		return err
	}
	fmt.Fprintf(h.Stderr, "nexis: building on %s (sending %s)\n", h.URL.Host, sys.Dir)
	if err := c.Start(); err != nil {
		return fmt.Errorf("--build-host: starting ssh: %w", err)
	}
	sent := make(chan error, 1)
	go func() {
		err := SendConfig(w, sys.Dir, func(name string, why error) { fmt.Fprintf(h.Stderr, "nexis: not sending %s: %v\n", name, why) })
		w.Close()
		sent <- err
	}()
	werr := c.Wait()
	// A send cut short because the build host stopped reading is its
	// failure, which it explained; any other is this side's.
	if serr := <-sent; serr != nil && !errors.Is(serr, syscall.EPIPE) && !errors.Is(serr, os.ErrClosed) {
		return fmt.Errorf("%w; nothing was built on %s or activated", serr, h.URL.Host)
	}
	if werr != nil {
		return fmt.Errorf("building on %s: %w (the reason is above); nothing was activated", h.URL.Host, werr)
	}
	if got, want := strings.TrimSpace(out.String()), sys.Drv.Out(); got != want {
		return fmt.Errorf("%s built %q, but the config evaluates to %s here: the build host evaluates it differently (another nexis version, or another store directory?); nothing was copied or activated", h.URL.Host, got, want)
	}
	return nil
}

// configToSend is the config's path in the directory that travels to
// the build host. Includes and sources outside the directory would not
// be there: they are refused before anything runs. (Starlark modules
// and templates are not listed by the evaluation: one outside the
// directory fails on the build host as missing.)
func configToSend(sys System) (rel string, err error) {
	for i, f := range sys.Files {
		if !filepath.IsLocal(filepath.FromSlash(f)) {
			return "", fmt.Errorf("the config includes %s, outside its directory %s: only that directory travels to the build host; move the file into it", f, sys.Dir)
		}
		if i == 0 {
			rel = f // the main file comes first
		}
	}
	var outside error
	eachDerivation(sys.Drv, func(d *builtins.Derivation) {
		for _, s := range d.Srcs {
			if outside == nil && s.Abs != "" && !inside(sys.Dir, s.Abs) {
				outside = fmt.Errorf("%s (a source of %s) is outside the config directory %s: only that directory travels to the build host; move it into it", s.Display, d.FullName(), sys.Dir)
			}
		}
	})
	return rel, outside
}

// Fetched is what Fetch brought: the system's path (held by a temporary
// root), how many paths were registered of its closure, and their bytes.
type Fetched struct {
	Path       storepath.Path
	Registered int
	Closure    int
	Bytes      int64
}

// Fetch imports the closure of the system the build host built into st,
// less the paths of its build graph st has already. The build host
// signs the paths with its own key; st accepts only paths signed by a
// key in trusted. (Between its build and this export the build host
// holds no root on the system: a collection there in between fails the
// export, and a second switch builds again.)
func (h *BuildHost) Fetch(ctx context.Context, st *store.Store, sys System, trusted *sign.Trusted) (*Fetched, error) {
	p, _, err := storepath.Parse(st.LogicalDir(), sys.Drv.Out())
	if err != nil {
		return nil, err
	}
	if err := st.AddTempRoots(p); err != nil {
		return nil, err
	}
	have, err := pathsHere(st, sys.Drv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := cache.SSHCommand(ctx, h.URL, h.SSH, "store", "export", "-r", "--except-from", "-", sys.Drv.Out())
	c.Stdin = strings.NewReader(strings.Join(have, "\n") + "\n")
	c.Stderr = h.Stderr
	r, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("--build-host: starting ssh: %w", err)
	}
	stats, ierr := cache.Import(st, r, trusted)
	if ierr != nil {
		cancel() // the export may be blocked on what is no longer read
	}
	if err := h.fetchError(c.Wait(), ierr); err != nil {
		return nil, err
	}
	if ok, err := st.IsValid(p); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s sent the closure of %s without the path itself; nothing was activated", h.URL.Host, sys.Drv.Out())
	}
	closure, err := st.Closure([]storepath.Path{p})
	if err != nil {
		return nil, err
	}
	return &Fetched{Path: p, Registered: stats.Registered, Closure: len(closure), Bytes: stats.Bytes}, nil
}

// fetchError explains a failed fetch: the export's own failure (it
// exited by itself, and said why on stderr) or the import's.
func (h *BuildHost) fetchError(werr, ierr error) error {
	var exit *exec.ExitError
	switch {
	case werr != nil && errors.As(werr, &exit) && exit.Exited():
		return fmt.Errorf("exporting the system on %s: %w (the reason is above; the build host signs with its $NEXIS_SIGN_KEY, which e.g. --build-program \"env NEXIS_SIGN_KEY=FILE nexis\" sets); nothing was activated", h.URL.Host, werr)
	case errors.Is(ierr, sign.ErrUntrusted):
		return fmt.Errorf("receiving the system from %s: %w: this machine accepts only paths signed by a key in %s (add the build host's public key there: nexis key public SECRET-FILE prints it); nothing was activated", h.URL.Host, ierr, h.TrustedFile)
	case ierr != nil:
		return fmt.Errorf("receiving the system from %s: %w; nothing was activated", h.URL.Host, ierr)
	case werr != nil:
		return fmt.Errorf("exporting the system on %s: %w; nothing was activated", h.URL.Host, werr)
	}
	return nil
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
