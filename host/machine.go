package host

import (
	"fmt"
	"os"
	"strings"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
)

// Machine is how this machine realises: logs under the state
// directory, the root's trusted keys, the files it has instead of
// downloads (a --stdenv's tarballs), progress on os.Stderr; downloads
// report to downloads when it is not nil.
func (h *Host) Machine(localFiles map[string]string, downloads func(done, total int, bytes int64)) (*realise.Machine, error) {
	logs, err := h.LogDir()
	if err != nil {
		return nil, err
	}
	trusted, err := h.InRoot(sign.DefaultTrustedFile)
	if err != nil {
		return nil, err
	}
	m := &realise.Machine{LogDir: logs, TrustedFile: trusted, LocalFiles: localFiles, Progress: os.Stderr, Verbosity: h.Verbosity}
	if downloads != nil {
		m.Downloads = func(sp cache.SubstituteProgress) { downloads(sp.Paths, sp.TotalPaths, sp.Bytes) }
	}
	return m, nil
}

// SSH are the ssh settings of every command that reaches another
// machine: NEXIS_SSHOPTS, and the command that runs nexis there.
func SSH(remoteProgram string) cache.SSHOptions {
	return cache.SSHOptions{Args: strings.Fields(os.Getenv("NEXIS_SSHOPTS")), RemoteProgram: remoteProgram}
}

// RemoteProgram is the shell command that runs nexis on another
// machine, by default ($NEXIS_REMOTE_PROGRAM, else nexis).
func RemoteProgram() string {
	if v := os.Getenv("NEXIS_REMOTE_PROGRAM"); v != "" {
		return v
	}
	return "nexis"
}

// Builders is a config's [nexis.builders] as a pool; nil when it names
// no machine. A builder substitutes the inputs it lacks from
// substituters (the config's caches) itself; the rest go to it signed
// with $NEXIS_SIGN_KEY (when set). Their outputs are accepted when
// signed by a key of <root>/etc/nexis/trusted-keys or the builder's
// public_key.
func (h *Host) Builders(specs []pool.Spec, substituters []string) (*pool.Pool, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	ms, err := pool.ParseMachines(specs)
	if err != nil {
		return nil, err
	}
	var key *sign.SecretKey
	if f := os.Getenv("NEXIS_SIGN_KEY"); f != "" {
		if key, err = sign.ReadSecretKeyFile(f); err != nil {
			return nil, fmt.Errorf("NEXIS_SIGN_KEY (signs the inputs sent to builders): %w", err)
		}
	}
	trustedFile, err := h.InRoot(sign.DefaultTrustedFile)
	if err != nil {
		return nil, err
	}
	return pool.New(ms, pool.Options{SSH: SSH(RemoteProgram()), Key: key, TrustedFile: trustedFile, Substituters: substituters})
}

// Remote is p as realise takes it: no pool, no Remote.
func Remote(p *pool.Pool) realise.Remote {
	if p == nil {
		return nil
	}
	return p
}
