package cache

import (
	"bufio"
	"bytes"
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

// sshDest is a remote store reached through `ssh host nexis store serve --stdio`.
type sshDest struct {
	url      string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	w        *bufio.Writer
	r        *bufio.Reader
	stderr   *tail
	storeDir string
	waitErr  error
	waited   bool
}

func dialSSH(ctx context.Context, u *url.URL, opts SSHOptions) (*sshDest, error) {
	opts = opts.fill()
	cmd := SSHCommand(ctx, u, opts, "store", "serve", "--stdio")
	d := &sshDest{url: u.String(), cmd: cmd, stderr: &tail{}}
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
	fmt.Fprintf(d.w, "%s\n", ServeMagic)
	if err := d.w.Flush(); err != nil {
		return nil, d.fail("handshake", err)
	}
	l, err := readLine(d.r)
	if err != nil {
		return nil, d.fail("handshake", err)
	}
	dir, ok := strings.CutPrefix(l, ServeMagic+" ")
	if !ok {
		return nil, d.fail("handshake", fmt.Errorf("the remote answered %q, not %q: is nexis there (--remote-program)?", abbreviate(l), ServeMagic))
	}
	d.storeDir = dir
	return d, nil
}

// fail closes the connection and explains err with what the remote
// said on stderr.
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
	if !d.waited {
		d.waited = true
		d.waitErr = d.cmd.Wait()
	}
	return d.waitErr
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
	fmt.Fprintf(d.w, "query %d\n", len(ps))
	for _, p := range ps {
		fmt.Fprintf(d.w, "%s\n", p.Base())
	}
	if err := d.w.Flush(); err != nil {
		return nil, d.fail("query", err)
	}
	l, err := readLine(d.r)
	if err != nil {
		return nil, d.fail("query", err)
	}
	ms, ok := strings.CutPrefix(l, "valid ")
	m, err := strconv.Atoi(ms)
	if !ok || err != nil || m < 0 || m > len(ps) {
		return nil, d.fail("query", fmt.Errorf("unexpected answer %q", abbreviate(l)))
	}
	asked := map[string]bool{}
	for _, p := range ps {
		asked[p.Hash] = true
	}
	have := map[string]bool{}
	for i := 0; i < m; i++ {
		l, err := readLine(d.r)
		if err != nil {
			return nil, d.fail("query", err)
		}
		p, err := parseBase(l)
		if err != nil || !asked[p.Hash] {
			return nil, d.fail("query", fmt.Errorf("unexpected answer %q", abbreviate(l)))
		}
		have[p.Hash] = true
	}
	return have, nil
}

func (d *sshDest) Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(int64)) error {
	if err := d.checkStoreDir(storeDir); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	fmt.Fprintf(d.w, "import %d\n", n)
	var sendErr error
	for i := 0; i < n; i++ {
		it, err := next()
		if err != nil {
			// The remote waits for items that will not come: hang up,
			// and it registers nothing.
			d.stdin.Close()
			d.wait()
			return err
		}
		sendErr = writeItem(d.w, it)
		it.Close()
		if sendErr != nil {
			break
		}
		if progress != nil {
			progress(it.Info.FileSize)
		}
	}
	if sendErr == nil {
		sendErr = d.w.Flush()
	}
	// Whether or not sending failed (the remote stops reading when it
	// refuses an item), its answer says why.
	l, err := readLine(d.r)
	if err != nil {
		if sendErr != nil {
			err = sendErr
		}
		return d.fail("import", err)
	}
	if msg, ok := strings.CutPrefix(l, "error "); ok {
		d.stdin.Close()
		d.wait()
		return fmt.Errorf("%s refused the copy: %s", d.url, msg)
	}
	if l != fmt.Sprintf("ok %d", n) {
		return d.fail("import", fmt.Errorf("unexpected answer %q", abbreviate(l)))
	}
	return sendErr
}

func (d *sshDest) Close() error {
	if d.waited {
		return nil
	}
	d.w.WriteString("quit\n")
	d.w.Flush()
	d.stdin.Close()
	if err := d.wait(); err != nil {
		if msg := d.stderr.String(); msg != "" {
			return fmt.Errorf("%s: %v: %s", d.url, err, msg)
		}
		return fmt.Errorf("%s: %w", d.url, err)
	}
	return nil
}

// Serve answers the serve protocol on r and w for st (the remote side
// of an ssh:// copy), accepting only records signed by trusted. It
// returns at "quit" or the end of r; after a refused import it answers
// "error …" and returns the error, since the rest of the stream is
// unread.
func Serve(st *store.Store, r io.Reader, w io.Writer, trusted *sign.Trusted) error {
	br := bufio.NewReaderSize(r, 256<<10)
	bw := bufio.NewWriter(w)
	l, err := readLine(br)
	if err != nil {
		return fmt.Errorf("serve: handshake: %w", err)
	}
	if l != ServeMagic {
		fmt.Fprintf(bw, "error expected %s\n", ServeMagic)
		bw.Flush()
		return fmt.Errorf("serve: handshake: got %q", abbreviate(l))
	}
	fmt.Fprintf(bw, "%s %s\n", ServeMagic, st.LogicalDir())
	if err := bw.Flush(); err != nil {
		return err
	}
	count := func(s, prefix string) (int, bool) {
		ns, ok := strings.CutPrefix(s, prefix)
		n, err := strconv.Atoi(ns)
		return n, ok && err == nil && n >= 0 && n <= 10_000_000
	}
	for {
		l, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		switch {
		case l == "quit":
			return nil
		case strings.HasPrefix(l, "query "):
			n, ok := count(l, "query ")
			if !ok {
				return serveErr(bw, fmt.Errorf("bad command %q", abbreviate(l)))
			}
			var valid []string
			for i := 0; i < n; i++ {
				q, err := readLine(br)
				if err != nil {
					return fmt.Errorf("serve: %w", err)
				}
				p, err := parseBase(q)
				if err != nil {
					return serveErr(bw, err)
				}
				ok, err := st.IsValid(p)
				if err != nil {
					return serveErr(bw, err)
				}
				if ok {
					valid = append(valid, q)
				}
			}
			fmt.Fprintf(bw, "valid %d\n", len(valid))
			for _, v := range valid {
				fmt.Fprintf(bw, "%s\n", v)
			}
			if err := bw.Flush(); err != nil {
				return err
			}
		case strings.HasPrefix(l, "import "):
			n, ok := count(l, "import ")
			if !ok {
				return serveErr(bw, fmt.Errorf("bad command %q", abbreviate(l)))
			}
			if _, err := readItems(st, br, n, trusted); err != nil {
				return serveErr(bw, err)
			}
			fmt.Fprintf(bw, "ok %d\n", n)
			if err := bw.Flush(); err != nil {
				return err
			}
		default:
			return serveErr(bw, fmt.Errorf("unknown command %q", abbreviate(l)))
		}
	}
}

func serveErr(bw *bufio.Writer, err error) error {
	msg := bytes.ReplaceAll([]byte(err.Error()), []byte("\n"), []byte(" "))
	fmt.Fprintf(bw, "error %s\n", msg)
	bw.Flush()
	return err
}
