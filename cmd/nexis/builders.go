package main

import (
	"github.com/nexisos/nexis/deploy"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
)

// settings are what building takes of the config: its
// [nexis.substituters] and [nexis.builders].
func settings(sys *lang.System) deploy.Settings {
	bs := sys.Config.Builders()
	specs := make([]pool.Spec, len(bs))
	for i, b := range bs {
		specs[i] = pool.Spec(b)
	}
	return deploy.Settings{Caches: realise.Caches(sys.Config.Substituters()), Builders: specs}
}

// newBuild is how a command builds the config here: --stdenv's
// tarballs, downloads shown on a terminal.
func newBuild(sys *lang.System) *deploy.Build {
	return &deploy.Build{Host: here, Settings: settings(sys), LocalFiles: stdenvFiles(), Downloads: transferProgress("downloading")}
}

// systemBuild is how a switch builds its system: the machine, the
// config's caches and builders, -j.
func systemBuild(sys *lang.System) deploy.Builder {
	b := newBuild(sys)
	b.Tune = func(o *realise.Options) { o.Jobs = actFlags.jobs }
	return b.Builder()
}

// machine is how this machine realises, with --stdenv's tarballs.
func machine() (*realise.Machine, error) {
	return here.Machine(stdenvFiles(), transferProgress("downloading"))
}
