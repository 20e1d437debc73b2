package deploy

import (
	"fmt"
	"io"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
)

// Hosts are the other machines a switch involves, as the command line
// names them (switch --target-host, --build-host).
type Hosts struct {
	// Target and Build are USER@HOST[:PORT], "" for none.
	Target, Build string
	// RemoteProgram runs nexis on the target (and the build host,
	// unless BuildProgram is set).
	RemoteProgram, BuildProgram string
	// Key loads the key a closure copied to the target is signed with.
	Key func() (*sign.SecretKey, error)
	// SwitchArgs are the flags the target's switch repeats, EvalArgs the
	// evaluation flags the build host's build repeats.
	SwitchArgs, EvalArgs []string
	Stdout, Stderr       io.Writer
}

// Remote is the switch hs names, on h, with its build settings and its
// activation here still to fill in. The target's key is loaded before
// anything is built: without it nothing could be deployed.
func (hs Hosts) Remote(h *host.Host) (*Remote, error) {
	r := &Remote{Host: h, Prints: hs.Stderr}
	if hs.Target != "" {
		u, err := cache.ParseSSHHost(hs.Target)
		if err != nil {
			return nil, fmt.Errorf("--target-host: %w", err)
		}
		key, err := hs.Key()
		if err != nil {
			return nil, err
		}
		r.Target = &TargetHost{URL: u, SSH: host.SSH(hs.RemoteProgram), Key: key, SwitchArgs: hs.SwitchArgs, Stdout: hs.Stdout, Stderr: hs.Stderr}
	}
	if hs.Build != "" {
		u, err := cache.ParseSSHHost(hs.Build)
		if err != nil {
			return nil, fmt.Errorf("--build-host: %w", err)
		}
		program := hs.BuildProgram
		if program == "" {
			program = hs.RemoteProgram
		}
		r.Build = &BuildHost{URL: u, SSH: host.SSH(program), EvalArgs: hs.EvalArgs, Stderr: hs.Stderr, TrustedFile: sign.TrustedFileIn(h.Root)}
	}
	return r, nil
}
