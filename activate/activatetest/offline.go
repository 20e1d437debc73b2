// Package activatetest realises systems for tests and benchmarks on a
// machine without network.
//
// examples/full names packages fetched from the internet (vim from git,
// libpng, a kernel tarball...). This machine has no network, so
// RealiseOffline registers FAKE outputs for every input of the system
// that cannot be realised offline, through the store's own Ingest (the
// paths are valid, registered, and verify), and then realises the
// system derivation itself for real: its /etc files, accounts, services
// and hooks are built as `nexis switch` builds them. Only the package
// and kernel contents are stand-ins: a marker file per package, a small
// fake kernel image and initrd.
package activatetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// needsNetwork reports whether realising d would fetch: a fixed-output
// fetch, a prebuilt archive, or an input that needs one.
func needsNetwork(d *builtins.Derivation, memo map[string]bool) bool {
	if v, ok := memo[d.ID()]; ok {
		return v
	}
	memo[d.ID()] = false
	net := d.Fixed != nil
	if !net && d.Passthru != nil {
		if _, ok, _ := d.Passthru.Get(starlarkString("prebuilt")); ok {
			net = true
		}
	}
	for _, in := range d.Drvs {
		if needsNetwork(in, memo) {
			net = true
		}
	}
	memo[d.ID()] = net
	return net
}

// Faked lists the derivations RealiseOffline stood in for.
type Faked struct {
	Paths []string
}

// RealiseOffline evaluates nothing: it takes an evaluated system's
// derivation, fakes its direct inputs that would need the network, and
// realises the rest for real. It returns the system path.
func RealiseOffline(ctx context.Context, st *store.Store, drv *builtins.Derivation, tmp string) (storepath.Path, *Faked, error) {
	var m manifest.Manifest
	if err := json.Unmarshal([]byte(drv.Getenv(builtins.EnvManifest)), &m); err != nil {
		return storepath.Path{}, nil, fmt.Errorf("system manifest: %w", err)
	}
	kernel := ""
	image := ""
	if m.Kernel != nil {
		kernel, image = m.Kernel.Path, m.Kernel.Image
	}
	memo := map[string]bool{}
	faked := &Faked{}
	for _, in := range drv.Drvs {
		if !needsNetwork(in, memo) {
			continue
		}
		for _, o := range in.Outputs {
			out, _ := in.OutputPath(o)
			p, _, err := storepath.Parse(st.LogicalDir(), out)
			if err != nil {
				return storepath.Path{}, nil, err
			}
			if ok, err := st.IsValid(p); err != nil || ok {
				if err != nil {
					return storepath.Path{}, nil, err
				}
				continue
			}
			dir, err := os.MkdirTemp(tmp, "fake-")
			if err != nil {
				return storepath.Path{}, nil, err
			}
			tree := filepath.Join(dir, "out")
			files := map[string]string{
				"share/nexis-fake/" + in.Name + "/FAKE": "FAKE output of " + in.FullName() + ": this machine has no network to fetch its sources\n",
			}
			if out == kernel {
				files = map[string]string{image: "FAKE kernel image " + in.FullName() + "\n", "initrd": "FAKE initrd\n"}
			}
			for rel, content := range files {
				f := filepath.Join(tree, filepath.FromSlash(rel))
				if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					return storepath.Path{}, nil, err
				}
				if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
					return storepath.Path{}, nil, err
				}
			}
			if _, err := st.Ingest(tree, p, store.IngestOptions{Deriver: in.ID(), Move: true}); err != nil {
				return storepath.Path{}, nil, fmt.Errorf("registering the fake %s: %w", out, err)
			}
			os.RemoveAll(dir)
			faked.Paths = append(faked.Paths, out)
		}
	}
	if _, err := realise.Build(ctx, st, []*builtins.Derivation{drv}, realise.Options{Jobs: 2}); err != nil {
		return storepath.Path{}, nil, err
	}
	p, _, err := storepath.Parse(st.LogicalDir(), drv.Out())
	return p, faked, err
}
