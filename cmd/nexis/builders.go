package main

import (
	"fmt"
	"os"

	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store/sign"
)

// builderPool is the [nexis.builders] of a config; nil when it names no
// machine. Inputs go to the builders signed with $NEXIS_SIGN_KEY (when
// set); their outputs are accepted when signed by a key of
// <root>/etc/nexis/trusted-keys or the builder's public_key.
func builderPool(sys *lang.System) (*pool.Pool, error) {
	builders := sys.Config.Builders()
	if len(builders) == 0 {
		return nil, nil
	}
	specs := make([]pool.Spec, len(builders))
	for i, b := range builders {
		specs[i] = pool.Spec(b)
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
	trustedFile, err := inRoot(sign.DefaultTrustedFile)
	if err != nil {
		return nil, err
	}
	return pool.New(ms, pool.Options{
		SSH:         sshOptions(envOr("NEXIS_REMOTE_PROGRAM", "nexis")),
		Key:         key,
		TrustedFile: trustedFile,
	})
}

// remote is p as realise takes it: no pool, no Remote.
func remote(p *pool.Pool) realise.Remote {
	if p == nil {
		return nil
	}
	return p
}
