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

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/storepath"
)

// The remote half of `nexis switch`: --target-host builds here, copies
// the closure over SSH and activates it there with the remote nexis;
// --system-path (hidden) is what that remote nexis runs. The switch
// command itself belongs to activation (switch.go); this file adds its
// flags from an init that runs after switch.go's (files initialise in
// name order), so that neither file edits the other.
var remoteSwitchFlags struct {
	targetHost    string
	signKey       string
	remoteProgram string
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
	f.StringVar(&remoteSwitchFlags.targetHost, "target-host", "", "build here, copy the closure to `USER@HOST[:PORT]` over SSH and activate it there")
	signKeyFlag(sw, &remoteSwitchFlags.signKey)
	f.StringVar(&remoteSwitchFlags.remoteProgram, "remote-program", envOr("NEXIS_REMOTE_PROGRAM", "nexis"), "the shell `COMMAND` that runs nexis on the target host")
	f.StringVar(&remoteSwitchFlags.systemPath, "system-path", "", "switch to the built system `PATH` (what --target-host runs remotely)")
	f.StringVar(&remoteSwitchFlags.configHash, "config-hash", "", "the identity of the config `HASH` --system-path was built from")
	f.MarkHidden("system-path")
	f.MarkHidden("config-hash")
	sw.Long += `

--target-host USER@HOST builds the system here (substituters included),
copies its closure to HOST over SSH (only the paths HOST lacks, signed
with --sign-key, which HOST must trust in its etc/nexis/trusted-keys),
then runs the remote nexis (--remote-program) to record and activate it
there, and prints what changed on HOST. NEXIS_SSHOPTS holds extra ssh
options. (There is no --build-host yet: derivations are not store paths
that could be copied to a build machine, so builds happen here.)`
	local := sw.RunE
	sw.RunE = func(cmd *cobra.Command, args []string) error {
		switch {
		case remoteSwitchFlags.systemPath != "":
			if len(args) > 0 {
				return errors.New("--system-path takes no CONFIG: the system is built already")
			}
			return switchToSystemPath(remoteSwitchFlags.systemPath, remoteSwitchFlags.configHash)
		case remoteSwitchFlags.targetHost != "":
			return switchRemote(cmd, args)
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
	prev := activeSystem(t)
	res, err := t.Switch(p, switchOptions(activate.ModeSwitch, configHash))
	if err != nil {
		return err
	}
	printResult(t, res, prev)
	return nil
}

// switchRemote builds the config here, copies the system's closure to
// the target host and activates it there.
func switchRemote(cmd *cobra.Command, args []string) error {
	u, err := cache.ParseSSHHost(remoteSwitchFlags.targetHost)
	if err != nil {
		return fmt.Errorf("--target-host: %w", err)
	}
	key, err := loadSignKey(remoteSwitchFlags.signKey)
	if err != nil {
		return err
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	st, err := openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	p, _, err := storepath.Parse(st.LogicalDir(), sys.Drv.Out())
	if err != nil {
		return err
	}
	// The copy below reads the closure: no collector may take it.
	if err := st.AddTempRoots(p); err != nil {
		return err
	}
	sub, err := substituter(sys)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	jobs := actFlags.jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	rep := realise.NewReporter(os.Stderr, false)
	res, err := realise.Build(ctx, st, []*builtins.Derivation{sys.Drv}, realise.Options{
		Jobs:         jobs,
		LogDir:       filepath.Join(physicalStateDir(), "logs"),
		SandboxPaths: sandboxPaths(sys),
		Reporter:     rep,
		Substituter:  sub,
	})
	realise.CloseReporter(rep)
	if err != nil {
		if res != nil {
			for _, f := range res.Failures {
				fmt.Fprintf(os.Stderr, "nexis: failed: %s\n", f.Drv.FullName())
			}
		}
		return fmt.Errorf("the system was not built, nothing was copied or activated: %w", err)
	}

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
