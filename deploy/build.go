package deploy

import (
	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/pool"
)

// Settings are what building takes of a config: its
// [nexis.substituters] and its [nexis.builders].
type Settings struct {
	Caches   realise.Caches
	Builders []pool.Spec
}

// Build is how a command builds on the host: its machine, a config's
// caches and builders, and what the command line tunes.
type Build struct {
	Host     *host.Host
	Settings Settings
	// LocalFiles stand in for downloads (a --stdenv's tarballs).
	LocalFiles map[string]string
	// Downloads shows how substitutions progress (nil: not shown).
	Downloads func(done, total int, bytes int64)
	// PrintLogs shows every build's log lines (-L).
	PrintLogs bool
	// Tune sets the options the command line gives (-j, -k, ...).
	Tune func(*realise.Options)
}

// Builder gives the machine, the options and the builder pool, when
// something must be built.
func (b *Build) Builder() Builder {
	return func() (*realise.Machine, realise.Options, func(), error) {
		m, err := b.Host.Machine(b.LocalFiles, b.Downloads)
		if err != nil {
			return nil, realise.Options{}, nil, err
		}
		m.PrintLogs = b.PrintLogs
		opts, err := m.Options(b.Settings.Caches)
		if err != nil {
			return nil, opts, nil, err
		}
		if b.Tune != nil {
			b.Tune(&opts)
		}
		builders, err := b.Host.Builders(b.Settings.Builders)
		if err != nil {
			return nil, opts, nil, err
		}
		opts.Remote = host.Remote(builders)
		return m, opts, func() { builders.Close() }, nil
	}
}
