package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// ServeMagic opens the serve protocol in both directions.
const ServeMagic = "nexis-serve-1"

// SSHOptions say how to reach a remote nexis.
type SSHOptions struct {
	// SSH is the ssh program (default "ssh").
	SSH string
	// Args are extra ssh arguments before the host (NEXIS_SSHOPTS).
	Args []string
	// RemoteProgram is the shell command that runs nexis on the remote
	// host (default "nexis"), e.g. "env NEXIS_ROOT=/mnt /opt/bin/nexis".
	RemoteProgram string
	// Stderr receives the remote's diagnostics (default os.Stderr).
	Stderr io.Writer
}

func (o SSHOptions) fill() SSHOptions {
	if o.SSH == "" {
		o.SSH = "ssh"
	}
	if o.RemoteProgram == "" {
		o.RemoteProgram = "nexis"
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	return o
}

// SSHTarget is "user@host" (or "host") and the port of an ssh:// URL
// or a user@host[:port] argument.
func SSHTarget(u *url.URL) (host, port string) {
	host = u.Hostname()
	if u.User != nil && u.User.Username() != "" {
		host = u.User.Username() + "@" + host
	}
	return host, u.Port()
}

// ParseSSHHost parses "user@host", "host", "user@host:port" or an
// ssh:// URL into an ssh:// URL.
func ParseSSHHost(s string) (*url.URL, error) {
	if !strings.HasPrefix(s, "ssh://") {
		s = "ssh://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%q: want user@host[:port] or ssh://user@host[:port]", strings.TrimPrefix(s, "ssh://"))
	}
	if strings.HasPrefix(u.Hostname(), "-") {
		return nil, fmt.Errorf("%q: a host cannot start with '-'", u.Hostname())
	}
	return u, nil
}

// SSHCommand is the ssh command that runs remoteArgs (joined into one
// shell command, after RemoteProgram) on the host of u.
func SSHCommand(ctx context.Context, u *url.URL, opts SSHOptions, remoteArgs ...string) *exec.Cmd {
	opts = opts.fill()
	host, port := SSHTarget(u)
	args := append([]string(nil), opts.Args...)
	if port != "" {
		args = append(args, "-p", port)
	}
	quoted := make([]string, len(remoteArgs))
	for i, a := range remoteArgs {
		quoted[i] = ShellQuote(a)
	}
	args = append(args, "--", host, opts.RemoteProgram+" "+strings.Join(quoted, " "))
	cmd := exec.CommandContext(ctx, opts.SSH, args...)
	return cmd
}

// ShellQuote quotes s for a POSIX shell (ssh hands the command to one).
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail keeps the last bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// ErrConnLost is wrapped when the connection to a remote nexis broke:
// ssh or the remote process died, or the machine went away.
var ErrConnLost = errors.New("the connection to the remote nexis was lost")

// RemoteBuildError is a build the remote ran, or refused to run, and
// that failed there; the connection is fine.
type RemoteBuildError struct {
	Host string
	Msg  string
}

func (e *RemoteBuildError) Error() string { return e.Host + ": " + e.Msg }

// sshDest is a remote store reached through `ssh host nexis store serve
// --stdio`: a copy destination, and a remote builder's store (Build,
// Fetch). Requests (query, import, export) take turns; builds run beside
// them, so what builds send ("log", "built", "failed") may arrive before
// a request's answer: one goroutine reads everything and hands a
// request's answer to the caller waiting for it, who reads the rest.
type sshDest struct {
	url      string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	r        *bufio.Reader
	stderr   *tail
	storeDir string

	wmu sync.Mutex // writes to w
	w   *bufio.Writer

	req     sync.Mutex    // one request at a time
	answers chan string   // the first line of a request's answer
	taken   chan struct{} // the caller has read the rest of it

	mu      sync.Mutex
	builds  map[int]*remoteBuild
	nextTag int
	lost    error         // why the reader stopped
	gone    chan struct{} // closed when the reader stopped

	abortOnce sync.Once
	aborted   chan struct{} // closed by abort: what arrives is out of step

	waitOnce sync.Once
	waitErr  error
}

type remoteBuild struct {
	log  io.Writer
	done chan error
}

func dialSSH(ctx context.Context, u *url.URL, opts SSHOptions) (*sshDest, error) {
	opts = opts.fill()
	// Not CommandContext: a cancelled copy hangs up (the remote then
	// registers nothing), and the connection of a builder outlives the
	// context it was dialled in.
	cmd := SSHCommand(context.Background(), u, opts, "store", "serve", "--stdio")
	d := &sshDest{
		url: u.String(), cmd: cmd, stderr: &tail{},
		answers: make(chan string), taken: make(chan struct{}),
		builds: map[int]*remoteBuild{}, gone: make(chan struct{}), aborted: make(chan struct{}),
	}
	cmd.Stderr = io.MultiWriter(opts.Stderr, d.stderr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: starting ssh: %w", d.url, err)
	}
	d.stdin, d.w, d.r = stdin, bufio.NewWriterSize(stdin, 256<<10), bufio.NewReaderSize(stdout, 64<<10)
	hello := make(chan error, 1)
	go func() {
		fmt.Fprintf(d.w, "%s\n", ServeMagic)
		if err := d.w.Flush(); err != nil {
			hello <- err
			return
		}
		l, err := readLine(d.r)
		if err != nil {
			hello <- err
			return
		}
		dir, ok := strings.CutPrefix(l, ServeMagic+" ")
		if !ok {
			hello <- fmt.Errorf("the remote answered %q, not %q: is nexis there (--remote-program)?", abbreviate(l), ServeMagic)
			return
		}
		d.storeDir = dir
		hello <- nil
	}()
	select {
	case err = <-hello:
	case <-ctx.Done():
		cmd.Process.Kill()
		err = <-hello
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, d.fail("handshake", err)
	}
	go d.readLoop()
	return d, nil
}

// readLoop reads everything the remote sends.
func (d *sshDest) readLoop() {
	for {
		l, err := readLine(d.r)
		select {
		case <-d.aborted:
			d.stop(errors.New("hung up"))
			return
		default:
		}
		if err != nil {
			d.stop(err)
			return
		}
		switch {
		case strings.HasPrefix(l, "log "):
			tag, n, ok := tagCount(l, "log ")
			if !ok || n > 1<<20 {
				d.stop(fmt.Errorf("unexpected %q", abbreviate(l)))
				return
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(d.r, b); err != nil {
				d.stop(err)
				return
			}
			if rb := d.build(tag); rb != nil && rb.log != nil {
				rb.log.Write(b)
			}
		case strings.HasPrefix(l, "built "), strings.HasPrefix(l, "failed "):
			verb, rest, _ := strings.Cut(l, " ")
			ts, msg, _ := strings.Cut(rest, " ")
			tag, err := strconv.Atoi(ts)
			rb := d.build(tag)
			if err != nil || rb == nil {
				d.stop(fmt.Errorf("unexpected %q", abbreviate(l)))
				return
			}
			if verb == "built" {
				rb.done <- nil
			} else {
				rb.done <- &RemoteBuildError{Host: d.url, Msg: msg}
			}
		default:
			select {
			case d.answers <- l:
				<-d.taken
			case <-d.aborted:
				d.stop(errors.New("hung up"))
				return
			}
		}
	}
}

func tagCount(l, prefix string) (tag, n int, ok bool) {
	f := strings.Fields(strings.TrimPrefix(l, prefix))
	if len(f) != 2 {
		return 0, 0, false
	}
	tag, err1 := strconv.Atoi(f[0])
	n, err2 := strconv.Atoi(f[1])
	return tag, n, err1 == nil && err2 == nil && n >= 0
}

func (d *sshDest) build(tag int) *remoteBuild {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.builds[tag]
}

// stop records why the connection ended and fails the builds under way.
func (d *sshDest) stop(err error) {
	d.stdin.Close()
	werr := d.wait()
	msg := d.stderr.String()
	switch {
	case msg != "":
		err = fmt.Errorf("%s: %w: %v; the remote said: %s", d.url, ErrConnLost, err, msg)
	case werr != nil:
		err = fmt.Errorf("%s: %w: %v (ssh: %v)", d.url, ErrConnLost, err, werr)
	default:
		err = fmt.Errorf("%s: %w: %v", d.url, ErrConnLost, err)
	}
	d.mu.Lock()
	d.lost = err
	for tag, rb := range d.builds {
		select {
		case rb.done <- err:
		default: // it has its answer already
		}
		delete(d.builds, tag)
	}
	d.mu.Unlock()
	close(d.gone)
}

// Lost is why the connection ended, nil while it works.
func (d *sshDest) Lost() error {
	select {
	case <-d.gone:
		return d.lost
	default:
		return nil
	}
}

// fail closes a connection that never got going and explains err with
// what the remote said on stderr.
func (d *sshDest) fail(what string, err error) error {
	d.stdin.Close()
	werr := d.wait()
	msg := d.stderr.String()
	switch {
	case msg != "":
		return fmt.Errorf("%s: %s: %v; the remote said: %s", d.url, what, err, msg)
	case werr != nil:
		return fmt.Errorf("%s: %s: %v (ssh: %v)", d.url, what, err, werr)
	}
	return fmt.Errorf("%s: %s: %w", d.url, what, err)
}

func (d *sshDest) wait() error {
	d.waitOnce.Do(func() { d.waitErr = d.cmd.Wait() })
	return d.waitErr
}

// abort hangs up at once: the stream is out of step (or must stop), and
// the remote registers nothing of a half-sent import.
func (d *sshDest) abort() {
	d.abortOnce.Do(func() { close(d.aborted) })
	d.stdin.Close()
	if d.cmd.Process != nil {
		d.cmd.Process.Kill()
	}
}

// request sends a request and reads its answer: write writes it, read
// gets the answer's first line and reads the rest from d.r. An error of
// read leaves the stream out of step: the connection is closed.
func (d *sshDest) request(what string, write func(w *bufio.Writer) error, read func(first string) error) error {
	d.req.Lock()
	defer d.req.Unlock()
	if err := d.Lost(); err != nil {
		return err
	}
	d.wmu.Lock()
	werr := write(d.w)
	if werr == nil {
		werr = d.w.Flush()
	}
	d.wmu.Unlock()
	var abort *abortError
	if errors.As(werr, &abort) {
		// The remote waits for what will not come: hang up.
		d.abort()
		<-d.gone
		return abort.err
	}
	// Even when sending failed, the remote may have answered why (it
	// stops reading what it refuses).
	select {
	case l := <-d.answers:
		rerr := read(l)
		if rerr != nil {
			d.abort()
		}
		d.taken <- struct{}{}
		if rerr != nil {
			return rerr
		}
		if werr != nil {
			return fmt.Errorf("%s: %s: %w", d.url, what, werr)
		}
		return nil
	case <-d.gone:
		if werr != nil {
			return fmt.Errorf("%s: %s: %v (%w)", d.url, what, werr, d.lost)
		}
		return fmt.Errorf("%s: %w", what, d.lost)
	}
}

// abortError is a failure on this side in the middle of a request.
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }

// remoteError turns an "error …" answer into an error.
func (d *sshDest) remoteError(what, l string) error {
	if msg, ok := strings.CutPrefix(l, "error "); ok {
		return fmt.Errorf("%s refused the %s: %s", d.url, what, msg)
	}
	return fmt.Errorf("%s: %s: unexpected answer %q", d.url, what, abbreviate(l))
}

func (d *sshDest) URL() string { return d.url }

// StoreDir is the remote's logical store directory.
func (d *sshDest) StoreDir() string { return d.storeDir }

func (d *sshDest) checkStoreDir(storeDir string) error {
	if d.storeDir != storeDir {
		return fmt.Errorf("%s: the remote store is %s, the paths belong to %s", d.url, d.storeDir, storeDir)
	}
	return nil
}

func (d *sshDest) Have(ctx context.Context, storeDir string, ps []storepath.Path) (map[string]bool, error) {
	if err := d.checkStoreDir(storeDir); err != nil {
		return nil, err
	}
	have := map[string]bool{}
	err := d.request("query", func(w *bufio.Writer) error {
		fmt.Fprintf(w, "query %d\n", len(ps))
		for _, p := range ps {
			fmt.Fprintf(w, "%s\n", p.Base())
		}
		return nil
	}, func(l string) error {
		return d.readValid("query", l, ps, have)
	})
	if err != nil {
		return nil, err
	}
	return have, nil
}

// readValid reads a "valid <m>" answer to a question about ps (its first
// line l, then m paths) into have.
func (d *sshDest) readValid(what, l string, ps []storepath.Path, have map[string]bool) error {
	ms, ok := strings.CutPrefix(l, "valid ")
	m, err := strconv.Atoi(ms)
	if !ok || err != nil || m < 0 || m > len(ps) {
		return d.remoteError(what, l)
	}
	asked := map[string]bool{}
	for _, p := range ps {
		asked[p.Hash] = true
	}
	for i := 0; i < m; i++ {
		l, err := readLine(d.r)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", d.url, what, err)
		}
		p, err := parseBase(l)
		if err != nil || !asked[p.Hash] {
			return fmt.Errorf("%s: %s: unexpected answer %q", d.url, what, abbreviate(l))
		}
		have[p.Hash] = true
	}
	return nil
}

func (d *sshDest) Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(int64)) error {
	if err := d.checkStoreDir(storeDir); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return d.request("import", func(w *bufio.Writer) error {
		fmt.Fprintf(w, "import %d\n", n)
		for i := 0; i < n; i++ {
			it, err := next()
			if err != nil {
				return &abortError{err}
			}
			err = writeItem(w, it)
			it.Close()
			if err != nil {
				return err
			}
			if progress != nil {
				progress(it.Info.FileSize)
			}
		}
		return nil
	}, func(l string) error {
		if l != fmt.Sprintf("ok %d", n) {
			return d.remoteError("copy", l)
		}
		return nil
	})
}

// Substitute asks the remote to substitute ps (with their closures)
// from the caches at urls itself, checked against the keys it trusts,
// not ours; it returns the paths of ps valid there afterwards. A path no
// cache has (or whose record the remote refuses) is simply not among
// them: the caller copies it.
func (d *sshDest) Substitute(ctx context.Context, storeDir string, urls []string, ps []storepath.Path) (map[string]bool, error) {
	if err := d.checkStoreDir(storeDir); err != nil {
		return nil, err
	}
	have := map[string]bool{}
	err := d.request("substitute", func(w *bufio.Writer) error {
		fmt.Fprintf(w, "substitute %d %d\n", len(urls), len(ps))
		for _, u := range urls {
			fmt.Fprintf(w, "%s\n", u)
		}
		for _, p := range ps {
			fmt.Fprintf(w, "%s\n", p.Base())
		}
		return nil
	}, func(l string) error {
		return d.readValid("substitute", l, ps, have)
	})
	if err != nil {
		return nil, err
	}
	return have, nil
}

// Build has the remote build the last derivation of a closure (payload,
// builtins.MarshalClosure) with its own sandbox, into its own store; its
// inputs must be there (Put). log receives the build's log as it runs.
// A build that failed or was refused there is a *RemoteBuildError; a
// connection that broke wraps ErrConnLost. Many builds may run at once.
func (d *sshDest) Build(ctx context.Context, payload []byte, log io.Writer) error {
	rb := &remoteBuild{log: log, done: make(chan error, 1)}
	d.mu.Lock()
	if d.lost != nil {
		d.mu.Unlock()
		return d.lost
	}
	tag := d.nextTag
	d.nextTag++
	d.builds[tag] = rb
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.builds, tag)
		d.mu.Unlock()
	}()
	d.wmu.Lock()
	fmt.Fprintf(d.w, "build %d %d\n", tag, len(payload))
	d.w.Write(payload)
	err := d.w.Flush()
	d.wmu.Unlock()
	if err != nil {
		<-d.gone // the reader sees the end too, and says why
		return d.lost
	}
	select {
	case err := <-rb.done:
		return err
	case <-ctx.Done():
		d.wmu.Lock()
		fmt.Fprintf(d.w, "cancel %d\n", tag)
		d.w.Flush()
		d.wmu.Unlock()
		return ctx.Err()
	}
}

// Fetch imports ps (in dependency order; their references must be in
// st) from the remote store into st, as an import checks them: signed by
// a key of trusted, archives matching their records, content addresses
// checked; all or nothing. The remote signs with its own key.
func (d *sshDest) Fetch(ctx context.Context, st *store.Store, ps []storepath.Path, trusted *sign.Trusted) (*ImportStats, error) {
	if err := d.checkStoreDir(st.LogicalDir()); err != nil {
		return nil, err
	}
	var stats *ImportStats
	var recs []*received
	err := d.request("export", func(w *bufio.Writer) error {
		fmt.Fprintf(w, "export %d\n", len(ps))
		for _, p := range ps {
			fmt.Fprintf(w, "%s\n", p.Base())
		}
		return nil
	}, func(l string) error {
		if l != fmt.Sprintf("export %d", len(ps)) {
			return d.remoteError("export", l)
		}
		var err error
		stats, recs, err = receiveItems(st, d.r, len(ps), trusted)
		if err != nil {
			return fmt.Errorf("receiving from %s: %w", d.url, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Registering (syncs, the database) needs nothing of the
	// connection: the builder's next requests go meanwhile.
	stats, err = registerItems(st, stats, recs)
	if err != nil {
		return nil, fmt.Errorf("registering what %s sent: %w", d.url, err)
	}
	return stats, nil
}

func (d *sshDest) Close() error {
	select {
	case <-d.gone:
		return nil
	default:
	}
	d.wmu.Lock()
	d.w.WriteString("quit\n")
	d.w.Flush()
	d.wmu.Unlock()
	d.stdin.Close()
	<-d.gone
	if err := d.wait(); err != nil {
		if msg := d.stderr.String(); msg != "" {
			return fmt.Errorf("%s: %v: %s", d.url, err, msg)
		}
		return fmt.Errorf("%s: %w", d.url, err)
	}
	return nil
}

// RemoteStore is a connection to the store of a remote nexis, as
// builders use it.
type RemoteStore interface {
	Dest
	Build(ctx context.Context, payload []byte, log io.Writer) error
	Fetch(ctx context.Context, st *store.Store, ps []storepath.Path, trusted *sign.Trusted) (*ImportStats, error)
	// Substitute has the remote substitute paths from caches itself.
	Substitute(ctx context.Context, storeDir string, urls []string, ps []storepath.Path) (map[string]bool, error)
	// Lost is why the connection ended, nil while it works.
	Lost() error
}

// DialRemote connects to the nexis on the host of an ssh:// URL.
func DialRemote(ctx context.Context, u *url.URL, opts SSHOptions) (RemoteStore, error) {
	return dialSSH(ctx, u, opts)
}

// ServeOptions say what Serve offers.
type ServeOptions struct {
	// Trusted are the keys whose records "import" accepts.
	Trusted *sign.Trusted
	// Key signs what "export" sends; without one, export is refused.
	Key *sign.SecretKey
	// Build builds what a "build" sends (a derivation closure), its log
	// to log, its outputs registered in the store when it returns nil;
	// nil: this machine builds for nobody.
	Build func(ctx context.Context, payload []byte, log io.Writer) error
	// TempDir holds archives on their way out (default os.TempDir()).
	TempDir string
}

// Serve answers the serve protocol on r and w for st (the remote side
// of an ssh:// copy), accepting only records signed by trusted.
func Serve(st *store.Store, r io.Reader, w io.Writer, trusted *sign.Trusted) error {
	return ServeWith(st, r, w, ServeOptions{Trusted: trusted})
}

// MaxBuildPayload bounds one "build" request.
const MaxBuildPayload = 256 << 20

// server is one Serve session.
type server struct {
	st   *store.Store
	opts ServeOptions
	br   *bufio.Reader

	wmu sync.Mutex
	bw  *bufio.Writer

	mu     sync.Mutex
	cancel map[int]context.CancelFunc
	wg     sync.WaitGroup
}

// ServeWith answers the serve protocol on r and w for st. It returns at
// "quit" or the end of r, after cancelling the builds still running;
// after a refused import it answers "error …" and returns the error,
// since the rest of the stream is unread.
func ServeWith(st *store.Store, r io.Reader, w io.Writer, opts ServeOptions) error {
	s := &server{st: st, opts: opts, br: bufio.NewReaderSize(r, 256<<10), bw: bufio.NewWriter(w), cancel: map[int]context.CancelFunc{}}
	defer s.wg.Wait()
	defer func() {
		s.mu.Lock()
		for _, c := range s.cancel {
			c()
		}
		s.mu.Unlock()
	}()
	l, err := readLine(s.br)
	if err != nil {
		return fmt.Errorf("serve: handshake: %w", err)
	}
	if l != ServeMagic {
		s.send(func(w *bufio.Writer) { fmt.Fprintf(w, "error expected %s\n", ServeMagic) })
		return fmt.Errorf("serve: handshake: got %q", abbreviate(l))
	}
	if err := s.send(func(w *bufio.Writer) { fmt.Fprintf(w, "%s %s\n", ServeMagic, st.LogicalDir()) }); err != nil {
		return err
	}
	for {
		l, err := readLine(s.br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		cmd, _, _ := strings.Cut(l, " ")
		switch cmd {
		case "quit":
			return nil
		case "query":
			err = s.query(l)
		case "substitute":
			err = s.substitute(l)
		case "import":
			err = s.importItems(l)
		case "export":
			err = s.export(l)
		case "build":
			err = s.build(l)
		case "cancel":
			tag, err := strconv.Atoi(strings.TrimPrefix(l, "cancel "))
			if err != nil {
				return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
			}
			s.mu.Lock()
			if c := s.cancel[tag]; c != nil {
				c()
			}
			s.mu.Unlock()
		default:
			return s.fail(fmt.Errorf("unknown command %q", abbreviate(l)))
		}
		if err != nil {
			return err
		}
	}
}

// send writes one message whole, between the messages of running
// builds.
func (s *server) send(write func(w *bufio.Writer)) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	write(s.bw)
	return s.bw.Flush()
}

func (s *server) fail(err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	s.send(func(w *bufio.Writer) { fmt.Fprintf(w, "error %s\n", msg) })
	return err
}

func count(s, prefix string) (int, bool) {
	ns, ok := strings.CutPrefix(s, prefix)
	n, err := strconv.Atoi(ns)
	return n, ok && err == nil && n >= 0 && n <= 10_000_000
}

// readPaths reads n "<hash>-<name>" lines.
func (s *server) readPaths(n int) ([]storepath.Path, error) {
	ps := make([]storepath.Path, 0, min(n, 4096))
	for i := 0; i < n; i++ {
		q, err := readLine(s.br)
		if err != nil {
			return nil, err
		}
		p, err := parseBase(q)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (s *server) query(l string) error {
	n, ok := count(l, "query ")
	if !ok {
		return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
	}
	ps, err := s.readPaths(n)
	if err != nil {
		return s.fail(err)
	}
	var valid []storepath.Path
	for _, p := range ps {
		ok, err := s.st.IsValid(p)
		if err != nil {
			return s.fail(err)
		}
		if ok {
			valid = append(valid, p)
		}
	}
	return s.send(func(w *bufio.Writer) {
		fmt.Fprintf(w, "valid %d\n", len(valid))
		for _, v := range valid {
			fmt.Fprintf(w, "%s\n", v.Base())
		}
	})
}

// substitute makes the asked paths valid from the named caches, as this
// machine substitutes: records signed by a key it trusts (the keys its
// imports accept, never the asker's), archives checked against them. A
// builder substitutes a derivation's inputs this way instead of
// receiving them. What cannot be had is left out of the answer, for the
// asker to send.
func (s *server) substitute(l string) error {
	f := strings.Fields(strings.TrimPrefix(l, "substitute "))
	nu, nerr := 0, error(nil)
	if len(f) == 2 {
		nu, nerr = strconv.Atoi(f[0])
	}
	np, ok := 0, false
	if len(f) == 2 && nerr == nil && nu >= 0 && nu <= 64 {
		np, ok = count(f[1], "")
	}
	if !ok {
		return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
	}
	urls := make([]string, nu)
	for i := range urls {
		u, err := readLine(s.br)
		if err != nil {
			return s.fail(err)
		}
		urls[i] = u
	}
	ps, err := s.readPaths(np)
	if err != nil {
		return s.fail(err)
	}
	valid := s.substituteFrom(urls, ps)
	return s.send(func(w *bufio.Writer) {
		fmt.Fprintf(w, "valid %d\n", len(valid))
		for _, v := range valid {
			fmt.Fprintf(w, "%s\n", v.Base())
		}
	})
}

// substituteFrom substitutes ps from urls, all at once when every one
// can be had, else one by one, and returns those valid afterwards.
func (s *server) substituteFrom(urls []string, ps []storepath.Path) []storepath.Path {
	if len(urls) > 0 && len(ps) > 0 && s.opts.Trusted != nil {
		if sub, err := NewSubstituter(urls, s.opts.Trusted); err == nil {
			ctx := context.Background()
			if _, err := sub.Substitute(ctx, s.st, ps); err != nil && len(ps) > 1 {
				for _, p := range ps {
					sub.Substitute(ctx, s.st, []storepath.Path{p})
				}
			}
		}
	}
	var valid []storepath.Path
	for _, p := range ps {
		if ok, err := s.st.IsValid(p); err == nil && ok {
			valid = append(valid, p)
		}
	}
	return valid
}

func (s *server) importItems(l string) error {
	n, ok := count(l, "import ")
	if !ok {
		return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
	}
	if _, err := readItems(s.st, s.br, n, s.opts.Trusted); err != nil {
		return s.fail(err)
	}
	return s.send(func(w *bufio.Writer) { fmt.Fprintf(w, "ok %d\n", n) })
}

// export sends the asked paths, signed with this machine's key: what a
// client fetches after a build here.
func (s *server) export(l string) error {
	n, ok := count(l, "export ")
	if !ok {
		return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
	}
	ps, err := s.readPaths(n)
	if err != nil {
		return s.fail(err)
	}
	if s.opts.Key == nil {
		return s.fail(fmt.Errorf("this machine has no signing key to send paths with (set NEXIS_SIGN_KEY in the remote program)"))
	}
	tmp := s.opts.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	// References first: an output may refer to another output.
	if ps, err = TopoSort(s.st, ps); err != nil {
		return s.fail(err)
	}
	items := make([]*Item, 0, len(ps))
	defer func() {
		for _, it := range items {
			it.Close()
		}
	}()
	for _, p := range ps {
		it, err := Prepare(s.st, p, s.opts.Key, "zstd", tmp)
		if err != nil {
			return s.fail(err)
		}
		items = append(items, it)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fmt.Fprintf(s.bw, "export %d\n", n)
	for _, it := range items {
		if err := writeItem(s.bw, it); err != nil {
			return err
		}
	}
	return s.bw.Flush()
}

// build starts a build and returns: its messages ("log", then "built"
// or "failed") go out while the next commands are answered.
func (s *server) build(l string) error {
	tag, n, ok := tagCount(l, "build ")
	if !ok || n > MaxBuildPayload {
		return s.fail(fmt.Errorf("bad command %q", abbreviate(l)))
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(s.br, payload); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if _, dup := s.cancel[tag]; dup {
		s.mu.Unlock()
		cancel()
		return s.fail(fmt.Errorf("build %d is running already", tag))
	}
	s.cancel[tag] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.cancel, tag)
			s.mu.Unlock()
			cancel()
		}()
		var err error
		if s.opts.Build == nil {
			err = errors.New("this nexis does not build for others")
		} else {
			err = s.opts.Build(ctx, payload, &logFrames{s: s, tag: tag})
		}
		s.send(func(w *bufio.Writer) {
			if err == nil {
				fmt.Fprintf(w, "built %d\n", tag)
				return
			}
			fmt.Fprintf(w, "failed %d %s\n", tag, strings.ReplaceAll(err.Error(), "\n", " | "))
		})
	}()
	return nil
}

// logFrames sends what a build writes as "log" messages.
type logFrames struct {
	s   *server
	tag int
}

func (f *logFrames) Write(b []byte) (int, error) {
	for rest := b; len(rest) > 0; {
		chunk := rest[:min(len(rest), 64<<10)]
		rest = rest[len(chunk):]
		err := f.s.send(func(w *bufio.Writer) {
			fmt.Fprintf(w, "log %d %d\n", f.tag, len(chunk))
			w.Write(chunk)
		})
		if err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
