package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// The remote half of `nexis switch`: --build-host builds on another
// machine and brings the closure here, --target-host copies the closure
// to another machine and activates it there with the remote nexis;
// --system-path (hidden) is what that remote nexis runs.
var remoteSwitchFlags struct {
	targetHost    string
	buildHost     string
	signKey       string
	remoteProgram string
	buildProgram  string
	systemPath    string
	configHash    string
}

// addRemoteSwitchFlags adds switch's flags for other machines.
func addRemoteSwitchFlags(sw *cobra.Command) {
	f := sw.Flags()
	f.StringVar(&remoteSwitchFlags.targetHost, "target-host", "", "copy the closure to `USER@HOST[:PORT]` over SSH and activate it there")
	f.StringVar(&remoteSwitchFlags.buildHost, "build-host", "", "build on `USER@HOST[:PORT]` over SSH and bring the closure here")
	signKeyFlag(sw, &remoteSwitchFlags.signKey)
	f.StringVar(&remoteSwitchFlags.remoteProgram, "remote-program", host.RemoteProgram(), "the shell `COMMAND` that runs nexis on the target host")
	f.StringVar(&remoteSwitchFlags.buildProgram, "build-program", "", "the shell `COMMAND` that runs nexis on the build host (default: --remote-program)")
	f.StringVar(&remoteSwitchFlags.systemPath, "system-path", "", "switch to the built system `PATH` (what --target-host runs remotely)")
	f.StringVar(&remoteSwitchFlags.configHash, "config-hash", "", "the identity of the config `HASH` --system-path was built from")
	f.MarkHidden("system-path")
	f.MarkHidden("config-hash")
}

// remoteSwitch is switch when another machine is involved: ok false
// when none is (a local switch).
func remoteSwitch(cmd *cobra.Command, args []string) (ok bool, err error) {
	f := remoteSwitchFlags
	remote := f.targetHost != "" || f.buildHost != ""
	switch {
	case f.systemPath != "":
		if len(args) > 0 {
			return true, errors.New("--system-path takes no CONFIG: the system is built already")
		}
		return true, switchToSystemPath(f.systemPath, f.configHash)
	case remote && cmd.Flags().Changed("generation"):
		return true, errors.New("--generation switches to a generation recorded here: it builds nothing, so it takes no --build-host or --target-host")
	case remote:
		return true, switchRemote(args)
	}
	return false, nil
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
	prev := t.ActiveSystem()
	res, err := t.Switch(p, switchOptions(activate.ModeSwitch, configHash))
	if err != nil {
		return err
	}
	res.Print(os.Stdout, os.Stderr, t, prev)
	return nil
}

// switchRemote builds the config here or on the build host, and
// activates it on the target host or here.
func switchRemote(args []string) error {
	f := remoteSwitchFlags
	var target *deploy.TargetHost
	if f.targetHost != "" {
		u, err := cache.ParseSSHHost(f.targetHost)
		if err != nil {
			return fmt.Errorf("--target-host: %w", err)
		}
		// Before anything is built: without it nothing could be deployed.
		key, err := loadSignKey(f.signKey)
		if err != nil {
			return err
		}
		target = &deploy.TargetHost{URL: u, SSH: host.SSH(f.remoteProgram), Key: key, Stdout: os.Stdout, Stderr: os.Stderr}
		if actFlags.force {
			target.SwitchArgs = append(target.SwitchArgs, "--force")
		}
		if actFlags.noHooks {
			target.SwitchArgs = append(target.SwitchArgs, "--no-hooks")
		}
	}
	var build *deploy.BuildHost
	if f.buildHost != "" {
		u, err := cache.ParseSSHHost(f.buildHost)
		if err != nil {
			return fmt.Errorf("--build-host: %w", err)
		}
		program := f.buildProgram
		if program == "" {
			program = f.remoteProgram
		}
		build = &deploy.BuildHost{URL: u, SSH: host.SSH(program), EvalArgs: remoteEvalArgs(), Stderr: os.Stderr, TrustedFile: sign.TrustedFileIn(here.Root)}
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	r := &deploy.Remote{
		Host: here, Build: build, Builder: systemBuild(sys), Target: target, Prints: os.Stderr,
		OpenTarget: func() (*activate.Target, func(), error) { return openTargetFor(true) },
		SwitchHere: func(t *activate.Target, p storepath.Path) error { return switchAndPrint(t, p, sys.Drv.ID()) },
	}
	if target != nil {
		r.Copying = transferProgress("copying to " + target.URL.Host)
	}
	return r.Switch(ctx, deploySystem(sys))
}

// deploySystem is what deploying takes of an evaluated system.
func deploySystem(sys *lang.System) deploy.System {
	return deploy.System{Drv: sys.Drv, Dir: sys.Config.Dir, Files: sys.Config.Files}
}

// remoteEvalArgs are the evaluation flags a build host repeats.
func remoteEvalArgs() []string {
	args := []string{"--system", evalFlags.system, "--max-steps", strconv.FormatUint(evalFlags.maxSteps, 10)}
	if evalFlags.showTrace {
		args = append(args, "--show-trace")
	}
	if evalFlags.maxDepth != lang.DefaultMaxDepth {
		args = append(args, "--max-depth", strconv.Itoa(evalFlags.maxDepth))
	}
	if evalFlags.maxMemory != lang.DefaultMaxMemory>>20 {
		args = append(args, "--max-memory", strconv.FormatInt(evalFlags.maxMemory, 10))
	}
	if actFlags.jobs > 0 {
		args = append(args, "-j", strconv.Itoa(actFlags.jobs))
	}
	return args
}
