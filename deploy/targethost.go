package deploy

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// TargetHost is a machine a system is deployed to (switch
// --target-host): the closure is copied to its store over ssh, signed
// with Key, which it must trust, and its nexis records and activates
// the system.
type TargetHost struct {
	URL *url.URL
	// SSH reaches it; its RemoteProgram runs the target's nexis.
	SSH cache.SSHOptions
	Key *sign.SecretKey
	// SwitchArgs are flags the remote switch repeats (--force, ...).
	SwitchArgs []string
	// Stdout and Stderr get what the remote switch prints.
	Stdout, Stderr io.Writer
}

// Copy copies the closure of the built system p from st to the target,
// only the paths it lacks.
func (h *TargetHost) Copy(ctx context.Context, st *store.Store, p storepath.Path, progress func(done, total int, bytes int64)) (*cache.CopyStats, error) {
	dest, err := cache.OpenDest(ctx, h.URL.String(), h.SSH)
	if err != nil {
		return nil, err
	}
	stats, err := cache.Copy(ctx, st, dest, []storepath.Path{p}, cache.ExportOptions{Key: h.Key, Progress: progress})
	if cerr := dest.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("nothing was activated on %s: %w", h.URL.Host, err)
	}
	return stats, nil
}

// Activate runs the target's nexis to record and activate the system
// sys, copied there already; it prints what changed.
func (h *TargetHost) Activate(ctx context.Context, sys System) error {
	remote := append([]string{"switch", "--system-path", sys.Drv.Out(), "--config-hash", sys.Drv.ID()}, h.SwitchArgs...)
	rc := cache.SSHCommand(ctx, h.URL, h.SSH, remote...)
	rc.Stdin, rc.Stdout, rc.Stderr = nil, h.Stdout, h.Stderr
	if err := rc.Run(); err != nil {
		return fmt.Errorf("activating on %s: %w (the closure is there; run nexis switch --target-host again)", h.URL.Host, err)
	}
	return nil
}
