// Package pool spreads builds over remote machines, as Nix's remote
// builders do: the machines of [nexis.builders], each reached over SSH
// through the same connection `nexis copy --to ssh://` uses (`nexis
// store serve --stdio` on the other side, store/cache).
//
// For each derivation the scheduler (realise) hands over, the pool
// picks, among the machines up that build its system and have the
// features it requires, the least loaded (its jobs divided by speed
// factor, the faster first on a tie) that takes another job, and there:
//
//  1. has the machine substitute the inputs it lacks from the config's
//     caches ([nexis.substituters], checked against the keys the
//     builder trusts), and copies it the rest (their closure, signed
//     with this machine's key, which the builder must trust);
//  2. sends the derivation's closure (builtins.MarshalClosure); the
//     builder recomputes every identity, checks that the inputs are
//     there, and builds it in its own sandbox (ServeBuild), its log
//     coming back as it runs;
//  3. fetches the outputs, signed by the builder's key, which this
//     machine must trust (etc/nexis/trusted-keys or the machine's
//     public_key), checked as every import is, registered all or none.
//
// A machine runs max_jobs builds at once, and takes as many jobs again
// that copy their inputs or fetch their outputs meanwhile: a job holds
// one of its build slots only while it builds, so a slot that frees
// goes to a job whose inputs are there already, and jobs copying count
// as load when the next machine is picked.
//
// One connection per machine carries all its jobs. A machine whose
// connection breaks (it went away, ssh died) is down for the rest of the
// run, and its jobs start again on another machine; when no machine for
// a derivation is left, realise builds it here if it can.
package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/cache"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// Machine is one builder of the pool.
type Machine struct {
	// Name is the machine's key in [nexis.builders], for messages.
	Name string
	// URL is ssh://[user@]host[:port].
	URL *url.URL
	// Systems are the systems it builds for ("x86_64-linux").
	Systems []string
	// MaxJobs is how many builds it runs at once (at least 1).
	MaxJobs int
	// SpeedFactor weighs its load: a machine twice as fast takes
	// twice the jobs before it counts as busy as another.
	SpeedFactor int
	// Features are what it supports of RequiredFeaturesEnv.
	Features []string
	// SSHKey is the identity file ssh logs in with ("" for ssh's own).
	SSHKey string
	// HostKey is its SSH host key ("ssh-ed25519 AAAA…"): when set,
	// ssh accepts that key only.
	HostKey string
	// PublicKey is the key it signs outputs with, trusted for what it
	// sends (besides etc/nexis/trusted-keys).
	PublicKey string
	// RemoteProgram runs nexis there (default: the pool's).
	RemoteProgram string
}

// Options are the pool's settings.
type Options struct {
	// SSH reaches the machines (NEXIS_SSHOPTS, the remote program).
	SSH cache.SSHOptions
	// Key signs the inputs copied to a machine; nil: a machine must
	// have every input already.
	Key *sign.SecretKey
	// TrustedFile and Trusted (lines of a trusted-keys file) decide
	// which outputs are accepted, with each machine's PublicKey.
	TrustedFile string
	Trusted     []string
	// TempDir holds archives on their way and the machines' known
	// hosts files (default os.TempDir()).
	TempDir string
	// Substituters are the config's binary caches: a builder lacking
	// inputs substitutes what they have itself, checked against the
	// keys it trusts, and only the rest is copied to it.
	Substituters []string
}

// Pool is a set of machines that build.
type Pool struct {
	opts     Options
	machines []*machine
	tmp      string

	mu      sync.Mutex
	changed chan struct{} // closed when a slot frees or a machine goes down

	warmOnce sync.Once
	warming  sync.WaitGroup
	stopWarm context.CancelFunc // under mu
	// shared archives each input once for the machines it goes to at
	// the same time.
	shared cache.SharedItems
}

type machine struct {
	Machine
	trusted *sign.Trusted
	ssh     cache.SSHOptions
	// compression is how inputs travel there: none to this machine's
	// own loopback, where compressing costs CPU the builder shares and
	// saves no time, zstd elsewhere.
	compression string

	jobs int   // under Pool.mu: admitted, at most 2*MaxJobs
	down error // under Pool.mu
	// builds holds a token per build running there: MaxJobs at most.
	builds chan struct{}

	connMu sync.Mutex
	conn   cache.RemoteStore
	upload sync.Mutex // one input copy at a time: jobs share inputs
}

// New makes a pool of ms. Nothing is dialled before the first build.
func New(ms []Machine, opts Options) (*Pool, error) {
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "nexis-pool-")
	if err != nil {
		return nil, err
	}
	p := &Pool{opts: opts, tmp: tmp, changed: make(chan struct{})}
	for i, m := range ms {
		if m.MaxJobs < 1 {
			m.MaxJobs = 1
		}
		if m.SpeedFactor < 1 {
			m.SpeedFactor = 1
		}
		keys := slices.Clone(opts.Trusted)
		if m.PublicKey != "" {
			keys = append(keys, m.PublicKey)
		}
		trusted, err := sign.NewTrusted(keys...)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("builder %s: public_key: %w", m.Name, err)
		}
		if opts.TrustedFile != "" {
			if err := trusted.AddFile(opts.TrustedFile); err != nil {
				p.Close()
				return nil, err
			}
		}
		sshOpts := opts.SSH
		sshOpts.Args = slices.Clone(opts.SSH.Args)
		if m.SSHKey != "" {
			sshOpts.Args = append(sshOpts.Args, "-i", m.SSHKey, "-o", "IdentitiesOnly=yes")
		}
		if m.HostKey != "" {
			known := fmt.Sprintf("%s/known_hosts-%d", tmp, i)
			if err := durable.WriteFile(known, []byte(knownHostsLine(m.URL, m.HostKey)), 0o600); err != nil {
				p.Close()
				return nil, err
			}
			sshOpts.Args = append(sshOpts.Args, "-o", "UserKnownHostsFile="+known, "-o", "StrictHostKeyChecking=yes")
		}
		if m.RemoteProgram != "" {
			sshOpts.RemoteProgram = m.RemoteProgram
		}
		p.machines = append(p.machines, &machine{Machine: m, trusted: trusted, ssh: sshOpts, compression: linkCompression(m.URL),
			builds: make(chan struct{}, m.MaxJobs)})
	}
	return p, nil
}

// linkCompression is how archives travel to the machine at u: not
// compressed to a loopback address (or localhost), where the link is
// memory; zstd to any other host.
func linkCompression(u *url.URL) string {
	if u == nil {
		return archive.CompressionZstd
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return archive.CompressionNone
	}
	return archive.CompressionZstd
}

// knownHostsLine is the known_hosts entry of host key k at u.
func knownHostsLine(u *url.URL, k string) string {
	host := u.Hostname()
	if port := u.Port(); port != "" && port != "22" {
		host = "[" + host + "]:" + port
	}
	return host + " " + strings.TrimSpace(k) + "\n"
}

// Close hangs up on every machine. A nil pool has nothing to close.
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	hangUp := func() {
		for _, m := range p.machines {
			m.connMu.Lock()
			if m.conn != nil {
				m.conn.Close()
				m.conn = nil
			}
			m.connMu.Unlock()
		}
	}
	// The first job's copies to other machines stop with the pool.
	p.mu.Lock()
	if p.stopWarm != nil {
		p.stopWarm()
	}
	p.mu.Unlock()
	hangUp()
	p.warming.Wait()
	// One that was still dialling had its connection made after it.
	hangUp()
	return os.RemoveAll(p.tmp)
}

func (m *machine) fits(d *builtins.Derivation) bool {
	if !slices.Contains(m.Systems, d.System) {
		return false
	}
	for _, f := range realise.RequiredFeatures(d) {
		if !slices.Contains(m.Features, f) {
			return false
		}
	}
	return true
}

// Accepts says whether a machine that is up can build d.
func (p *Pool) Accepts(d *builtins.Derivation) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.machines {
		if m.down == nil && m.fits(d) {
			return true
		}
	}
	return false
}

// acquire waits for the least loaded machine that can build d and
// takes another job (one that builds, or copies, or fetches, besides
// max_jobs builds), and admits the job there.
func (p *Pool) acquire(ctx context.Context, d *builtins.Derivation) (*machine, error) {
	for {
		p.mu.Lock()
		var best *machine
		any := false
		for _, m := range p.machines {
			if m.down != nil || !m.fits(d) {
				continue
			}
			any = true
			if m.jobs >= 2*m.MaxJobs {
				continue
			}
			// Lower load first: jobs/speed, compared without division.
			if best == nil || m.jobs*best.SpeedFactor < best.jobs*m.SpeedFactor ||
				(m.jobs*best.SpeedFactor == best.jobs*m.SpeedFactor && m.SpeedFactor > best.SpeedFactor) {
				best = m
			}
		}
		if best != nil {
			best.jobs++
			p.mu.Unlock()
			return best, nil
		}
		changed := p.changed
		p.mu.Unlock()
		if !any {
			return nil, fmt.Errorf("%s is for %s: %w", d.FullName(), d.System, realise.ErrNoMachine)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// notify wakes the jobs waiting for a machine. Under p.mu.
func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pool) release(m *machine) {
	p.mu.Lock()
	m.jobs--
	p.notify()
	p.mu.Unlock()
}

// markDown takes m out of the pool for the rest of the run.
func (p *Pool) markDown(m *machine, err error) {
	p.mu.Lock()
	if m.down == nil {
		m.down = err
	}
	p.notify()
	p.mu.Unlock()
	m.connMu.Lock()
	if m.conn != nil {
		m.conn.Close()
		m.conn = nil
	}
	m.connMu.Unlock()
}

// lostError is a failure of the machine, not of the build.
type lostError struct{ err error }

func (e *lostError) Error() string { return e.err.Error() }
func (e *lostError) Unwrap() error { return e.err }

// connect returns m's connection, dialling it the first time.
func (m *machine) connect(ctx context.Context) (cache.RemoteStore, error) {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.conn != nil && m.conn.Lost() == nil {
		return m.conn, nil
	}
	c, err := cache.DialRemote(ctx, m.URL, m.ssh)
	if err != nil {
		return nil, &lostError{err}
	}
	m.conn = c
	return c, nil
}

// Build builds d on a machine of the pool (realise.Remote).
func (p *Pool) Build(ctx context.Context, st *store.Store, d *builtins.Derivation, inputs []storepath.Path, started func(string), log io.Writer) error {
	payload, err := builtins.MarshalClosure(d)
	if err != nil {
		return err
	}
	p.warmOnce.Do(func() { p.warm(ctx, st, d, inputs) })
	for {
		m, err := p.acquire(ctx, d)
		if err != nil {
			return err
		}
		err = p.buildOn(ctx, m, st, d, payload, inputs, started, log)
		p.release(m)
		var lost *lostError
		if errors.As(err, &lost) || errors.Is(err, cache.ErrConnLost) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.markDown(m, err)
			fmt.Fprintf(log, "nexis: builder %s went away (%v); building %s elsewhere\n", m.Name, err, d.FullName())
			continue
		}
		if err != nil {
			return fmt.Errorf("on builder %s: %w", m.Name, err)
		}
		return nil
	}
}

func (p *Pool) buildOn(ctx context.Context, m *machine, st *store.Store, d *builtins.Derivation, payload []byte, inputs []storepath.Path, started func(string), log io.Writer) error {
	conn, err := m.connect(ctx)
	if err != nil {
		return err
	}
	if err := p.copyInputs(ctx, m, conn, st, inputs); err != nil {
		return err
	}
	// A build slot for the build only: the next job's copy goes on
	// meanwhile, and this one's fetch after it.
	select {
	case m.builds <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	started(m.Name)
	err = conn.Build(ctx, payload, log)
	<-m.builds
	if err != nil {
		return err
	}
	var outs []storepath.Path
	for _, o := range d.Outputs {
		full, _ := d.OutputPath(o)
		op, _, err := storepath.Parse(st.LogicalDir(), full)
		if err != nil {
			return err
		}
		if ok, err := st.IsValid(op); err != nil {
			return err
		} else if !ok {
			outs = append(outs, op)
		}
	}
	if len(outs) == 0 {
		return nil
	}
	_, err = conn.Fetch(ctx, st, outs, m.trusted)
	if err != nil && errors.Is(err, sign.ErrUntrusted) {
		return fmt.Errorf("%w: this machine accepts what a builder sends only when signed by a key in etc/nexis/trusted-keys or the builder's public_key", err)
	}
	return err
}

// warm sends the inputs of the pool's first job to every machine that
// could build it, all at once. What the first job needs is mostly what
// every job of a build needs (the stdenv, hundreds of MB): sent to a
// machine only when its first job comes, it held that job, and the
// machine, for seconds, and a second machine got its first job only
// after the graph's first build was done, so that it started its copy
// when the first machine was already building. A job given to a
// machine meanwhile waits for the copy (copyInputs takes the machine's
// upload lock) and then sends only what is still missing. A failure
// here is left for that job to meet and report.
func (p *Pool) warm(ctx context.Context, st *store.Store, d *builtins.Derivation, inputs []storepath.Path) {
	if len(inputs) == 0 {
		return
	}
	p.mu.Lock()
	var ms []*machine
	for _, m := range p.machines {
		if m.down == nil && m.fits(d) {
			ms = append(ms, m)
		}
	}
	ctx, p.stopWarm = context.WithCancel(ctx)
	p.mu.Unlock()
	for _, m := range ms {
		p.warming.Add(1)
		go func() {
			defer p.warming.Done()
			if conn, err := m.connect(ctx); err == nil {
				p.copyInputs(ctx, m, conn, st, inputs)
			}
		}()
	}
}

// missingOn returns the paths of inputs the machine behind conn lacks.
func missingOn(ctx context.Context, conn cache.RemoteStore, st *store.Store, inputs []storepath.Path) ([]storepath.Path, error) {
	have, err := conn.Have(ctx, st.LogicalDir(), inputs)
	if err != nil {
		return nil, err
	}
	var missing []storepath.Path
	for _, in := range inputs {
		if !have[in.Hash] {
			missing = append(missing, in)
		}
	}
	return missing, nil
}

// copyInputs sends m the paths of inputs it lacks.
func (p *Pool) copyInputs(ctx context.Context, m *machine, conn cache.RemoteStore, st *store.Store, inputs []storepath.Path) error {
	if len(inputs) == 0 {
		return nil
	}
	m.upload.Lock()
	defer m.upload.Unlock()
	if len(p.opts.Substituters) > 0 {
		missing, err := missingOn(ctx, conn, st, inputs)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			if _, err := conn.Substitute(ctx, st.LogicalDir(), p.opts.Substituters, missing); err != nil {
				return err
			}
		}
	}
	if p.opts.Key != nil {
		// Copy asks the machine what it lacks and sends only that.
		_, err := cache.Copy(ctx, st, conn, inputs, cache.ExportOptions{Key: p.opts.Key, TempDir: p.opts.TempDir, Compression: m.compression, Shared: &p.shared})
		return err
	}
	missing, err := missingOn(ctx, conn, st, inputs)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].Name < missing[j].Name })
	return fmt.Errorf("the builder lacks %d input(s) (%s, ...) and there is no signing key to copy them with: set NEXIS_SIGN_KEY to a key the builder trusts", len(missing), missing[0].Name)
}
