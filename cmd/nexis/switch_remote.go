package main

import (
	"errors"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// The remote half of `nexis switch`: --build-host builds on another
// machine and brings the closure here, --target-host copies the closure
// to another machine and activates it there with the remote nexis;
// --system-path (hidden) is what that remote nexis runs.
var remoteSwitchFlags struct {
	hosts      deploy.Hosts
	signKey    string
	systemPath string
	configHash string
}

// addRemoteSwitchFlags adds switch's flags for other machines.
func addRemoteSwitchFlags(sw *cobra.Command) {
	f, h := sw.Flags(), &remoteSwitchFlags.hosts
	f.StringVar(&h.Target, "target-host", "", "copy the closure to `USER@HOST[:PORT]` over SSH and activate it there")
	f.StringVar(&h.Build, "build-host", "", "build on `USER@HOST[:PORT]` over SSH and bring the closure here")
	signKeyFlag(sw, &remoteSwitchFlags.signKey)
	f.StringVar(&h.RemoteProgram, "remote-program", host.RemoteProgram(), "the shell `COMMAND` that runs nexis on the target host")
	f.StringVar(&h.BuildProgram, "build-program", "", "the shell `COMMAND` that runs nexis on the build host (default: --remote-program)")
	f.StringVar(&remoteSwitchFlags.systemPath, "system-path", "", "switch to the built system `PATH` (what --target-host runs remotely)")
	f.StringVar(&remoteSwitchFlags.configHash, "config-hash", "", "the identity of the config `HASH` --system-path was built from")
	f.MarkHidden("system-path")
	f.MarkHidden("config-hash")
}

// remoteSwitch is switch when another machine is involved: ok false
// when none is (a local switch).
func remoteSwitch(cmd *cobra.Command, args []string) (ok bool, err error) {
	f := remoteSwitchFlags
	remote := f.hosts.Target != "" || f.hosts.Build != ""
	switch {
	case f.systemPath != "":
		if len(args) > 0 {
			return true, errors.New("--system-path takes no CONFIG: the system is built already")
		}
		return true, here.WithTarget(func(t *activate.Target) error {
			p, err := host.SystemPath(t, f.systemPath)
			if err != nil {
				return err
			}
			return switchAndPrint(t, p, f.configHash)
		})
	case remote && cmd.Flags().Changed("generation"):
		return true, errors.New("--generation switches to a generation recorded here: it builds nothing, so it takes no --build-host or --target-host")
	case remote:
		return true, switchRemote(args)
	}
	return false, nil
}

// switchRemote builds the config here or on the build host, and
// activates it on the target host or here.
func switchRemote(args []string) error {
	hs := remoteSwitchFlags.hosts
	hs.Key = func() (*sign.SecretKey, error) { return loadSignKey(remoteSwitchFlags.signKey) }
	hs.Stdout, hs.Stderr = os.Stdout, os.Stderr
	hs.EvalArgs = remoteEvalArgs()
	if act.Force {
		hs.SwitchArgs = append(hs.SwitchArgs, "--force")
	}
	if act.NoHooks {
		hs.SwitchArgs = append(hs.SwitchArgs, "--no-hooks")
	}
	r, err := hs.Remote(here)
	if err != nil {
		return err
	}
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	ctx, stop := interruptible()
	defer stop()
	r.Builder = systemBuild(sys)
	r.SwitchHere = func(t *activate.Target, p storepath.Path) error { return switchAndPrint(t, p, sys.Drv.ID()) }
	if r.Target != nil {
		r.Copying = newProgress("copying to " + r.Target.URL.Host).Transfer()
	}
	return r.Switch(ctx, deploySystem(sys))
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
