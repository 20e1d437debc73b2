// Package sandbox runs a builder in fresh Linux namespaces (mount, PID,
// network, UTS, IPC) with a private root that holds only what the build
// may see: its inputs read-only at their logical store paths, its outputs
// and build directory writable, a minimal /dev, /proc and /tmp, and at
// /usr the stdenv's tree (a store path, see Spec.Usr); no host directory
// unless a spec names one. The builder runs with umask 022 as an
// unprivileged build user with no way back to root (no_new_privs, nosuid
// mounts).
//
// The namespaces are made by clone(2) when the sandbox's init starts:
// nexis-sandbox-init, or this same executable, started with argv[0] =
// InitArg0, because mounts must be set up from inside the new namespaces
// and Go cannot run code between fork and exec. The init is C (init.c), a
// constructor that runs before the Go runtime would start: it sets up the
// root, pivots into it, becomes the build user and executes the builder,
// which so is PID 1 of the namespace. Killing it kills the whole
// PID namespace, which is how timeouts and cancellation stop a build, and
// it dies with its parent (PR_SET_PDEATHSIG), so a killed nexis leaves no
// build running.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// InitArg0 is the argv[0] the sandbox init is started with.
const InitArg0 = "nexis-sandbox-init"

// Bind makes host path Source visible at Target inside the sandbox.
type Bind struct {
	Source   string
	Target   string
	Writable bool
}

// Spec is one sandboxed run.
type Spec struct {
	// RootDir is an empty host directory the sandbox's root is mounted
	// on (inside the sandbox's own mount namespace: the host never sees
	// the mounts).
	RootDir string
	// Args is the builder and its arguments; a builder without a slash
	// is looked up in the PATH of Env.
	Args []string
	Env  []string
	// Dir is the working directory inside the sandbox.
	Dir string
	// Binds are the inputs (read-only), the outputs and the build
	// directory (writable).
	Binds []Bind
	// Usr are host directories (the usr/ of the stdenv and of tool
	// layers, in the store) merged read-only at /usr, the first winning;
	// /bin, /sbin, /lib and /lib64 link into it. Empty: no /usr at all.
	Usr []string
	// HostPaths are host directories made visible read-only at the same
	// place (host symbolic links such as /bin -> usr/bin are recreated).
	// Only an explicit [nexis] sandbox_paths puts any here.
	HostPaths []string
	// Network keeps the host's network (fixed-output builds only);
	// otherwise the sandbox has a loopback interface and nothing else.
	Network bool
	// UID and GID of the build user; never 0.
	UID int
	GID int
	// Hostname inside the sandbox.
	Hostname string
}

// ExitError is a builder that ran and failed.
type ExitError struct {
	Code   int            // exit status, or -1 when killed by a signal
	Signal syscall.Signal // the signal, when Code is -1
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("builder was killed by signal %d (%s)", int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("builder exited with status %d", e.Code)
}

// setupFailed is the exit status of an init that could not set up the
// sandbox; the reason is on the status pipe.
const setupFailed = 125

// Run runs spec, with the builder's stdout and stderr going to log. It
// returns an *ExitError when the builder fails, ctx's error (wrapped)
// when ctx ends first (the whole sandbox is killed), and other errors
// when the sandbox could not be made.
func Run(ctx context.Context, spec *Spec, log io.Writer) error {
	if spec.UID == 0 || spec.GID == 0 {
		return errors.New("sandbox: refusing to run a builder as root")
	}
	if len(spec.Args) == 0 {
		return errors.New("sandbox: no builder")
	}
	self, err := initProgram()
	if err != nil {
		return err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return fmt.Errorf("sandbox: %w", err)
	}
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	if !spec.Network {
		flags |= syscall.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path: self,
		Args: []string{InitArg0},
		// One P and no collector: the init is short-lived and single-minded,
		// and a Go runtime sized for the machine costs more than its work.
		Env:        []string{"GOMAXPROCS=1", "GOGC=off"},
		Stdout:     log,
		Stderr:     log,
		ExtraFiles: []*os.File{specR, statusW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			Pdeathsig:  syscall.SIGKILL,
			Setsid:     true,
		},
	}
	err = cmd.Start()
	specR.Close()
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return fmt.Errorf("sandbox: starting init: %w", err)
	}
	go func() {
		// The init reads the whole spec before doing anything; a write
		// error surfaces as its setup failure.
		specW.Write(encodeSpec(spec))
		specW.Close()
	}()
	statusc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(statusR, 64<<10))
		statusR.Close()
		statusc <- b
	}()
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-waitc:
	case <-ctx.Done():
		// Killing the init (PID 1 of the namespace) kills every process
		// in it.
		cmd.Process.Kill()
		<-waitc
		<-statusc
		return fmt.Errorf("sandbox: %w", context.Cause(ctx))
	}
	status := <-statusc
	if werr == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		return fmt.Errorf("sandbox: %w", werr)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if ws.Exited() && ws.ExitStatus() == setupFailed && len(status) > 0 {
		return fmt.Errorf("sandbox setup: %s", bytes.TrimSpace(status))
	}
	if ws.Signaled() {
		return &ExitError{Code: -1, Signal: ws.Signal()}
	}
	return &ExitError{Code: ws.ExitStatus()}
}

// InitProgramName is the standalone init looked for beside the running
// executable (see Main).
const InitProgramName = "nexis-sandbox-init"

var (
	initOnce sync.Once
	initPath string
	initErr  error
)

// initProgram is the program started as the sandbox init: $NEXIS_SANDBOX_INIT,
// else nexis-sandbox-init beside this executable, else this executable
// itself (whose constructor in init.c recognises InitArg0).
func initProgram() (string, error) {
	initOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			initErr = fmt.Errorf("sandbox: finding this executable to start the sandbox init: %w", err)
			return
		}
		initPath = self
		cands := []string{os.Getenv("NEXIS_SANDBOX_INIT"), filepath.Join(filepath.Dir(self), InitProgramName)}
		for _, c := range cands {
			if c == "" {
				continue
			}
			if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				initPath = c
				return
			}
		}
	})
	return initPath, initErr
}

// Available reports why sandboxed builds cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("sandboxed builds need root (namespaces, mounts and a build user)")
	}
	return nil
}

// encodeSpec writes spec as init.c reads it: NUL-terminated fields, lists
// as a count and their items, binds as source, target, "1" or "0".
func encodeSpec(spec *Spec) []byte {
	var b []byte
	field := func(s string) { b = append(append(b, s...), 0) }
	list := func(xs []string) {
		field(strconv.Itoa(len(xs)))
		for _, x := range xs {
			field(x)
		}
	}
	network := "0"
	if spec.Network {
		network = "1"
	}
	field(spec.RootDir)
	field(spec.Dir)
	field(spec.Hostname)
	field(strconv.Itoa(spec.UID))
	field(strconv.Itoa(spec.GID))
	field(network)
	list(spec.Args)
	list(spec.Env)
	list(spec.Usr)
	list(spec.HostPaths)
	var binds []string
	for _, bd := range spec.Binds {
		w := "0"
		if bd.Writable {
			w = "1"
		}
		binds = append(binds, bd.Source, bd.Target, w)
	}
	list(binds)
	return b
}

// HostName is the hostname builds see; kept constant so that nothing of
// the machine leaks into outputs.
const HostName = "localhost"
