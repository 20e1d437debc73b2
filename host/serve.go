package host

import (
	"fmt"
	"io"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
)

// Serve answers a remote nexis on in and out (nexis store serve): it
// accepts paths signed by a key the host trusts, builds what a builder
// pool sends with the logs in the host's state directory, and signs
// what it sends with the secret key in signKeyFile ("": unsigned).
func (h *Host) Serve(in io.Reader, out io.Writer, signKeyFile string) error {
	trusted, err := h.TrustedKeys()
	if err != nil {
		return err
	}
	s, err := h.OpenStore()
	if err != nil {
		return err
	}
	defer s.Close()
	opts := cache.ServeOptions{Trusted: trusted}
	if signKeyFile != "" {
		if opts.Key, err = sign.ReadSecretKeyFile(signKeyFile); err != nil {
			return fmt.Errorf("NEXIS_SIGN_KEY: %w", err)
		}
	}
	logs, err := h.LogDir()
	if err != nil {
		return err
	}
	opts.Build = pool.ServeBuild(s, realise.Options{LogDir: logs})
	if err := cache.ServeWith(s, in, out, opts); err != nil {
		return err
	}
	return s.Close()
}

// Import registers the paths of an export file read from r, each signed
// by a key the host trusts or one of extraTrusted (nexis store import).
func (h *Host) Import(r io.Reader, extraTrusted ...string) (*cache.ImportStats, error) {
	trusted, err := h.TrustedKeys(extraTrusted...)
	if err != nil {
		return nil, err
	}
	s, err := h.OpenStore()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	stats, err := cache.Import(s, r, trusted)
	if err != nil {
		return nil, err
	}
	return stats, s.Close()
}
