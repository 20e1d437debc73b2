package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Item is one store path ready to send: its signed record and its stored
// (compressed) archive in a temporary file. The file has no name from
// the moment it is made: however the process ends (a reader that goes
// away mid-export kills `nexis store export` with SIGPIPE), nothing is
// left behind in the temporary directory.
type Item struct {
	Info *Info
	file *os.File
	// release, when set, is what Close does instead of closing the
	// file: the item is one of SharedItems'.
	release func()
}

// Open opens the stored archive, at its start, apart from any other
// reader of it: through /proc, the file having no name.
func (it *Item) Open() (*os.File, error) {
	if it.file == nil {
		return nil, errors.New("the archive of a closed item")
	}
	return os.Open(fmt.Sprintf("/proc/self/fd/%d", it.file.Fd()))
}

// Close lets go of the temporary file, which goes with it.
func (it *Item) Close() error {
	if it.file == nil {
		return nil
	}
	f := it.file
	it.file = nil
	if it.release != nil {
		it.release()
		return nil
	}
	return f.Close()
}

// SharedItems prepares a path once for the copies that send it at the
// same time (ExportOptions.Shared): a pool of builders sends the same
// inputs, the stdenv among them, to several machines at once, and
// archiving hundreds of MB for each cost CPU they all wait for. An
// item's file goes when the last copy using it is done; a later copy
// prepares the path again.
type SharedItems struct {
	mu    sync.Mutex
	items map[sharedKey]*sharedItem
}

type sharedKey struct{ hash, compression string }

type sharedItem struct {
	done  chan struct{}
	it    *Item
	err   error
	users int
}

// prepare is Prepare through s.
func (s *SharedItems) prepare(st *store.Store, p storepath.Path, key *sign.SecretKey, compression, tmpDir string) (*Item, error) {
	k := sharedKey{p.Hash, compression}
	s.mu.Lock()
	if s.items == nil {
		s.items = map[sharedKey]*sharedItem{}
	}
	e := s.items[k]
	first := e == nil
	if first {
		e = &sharedItem{done: make(chan struct{})}
		s.items[k] = e
	}
	e.users++
	s.mu.Unlock()
	if first {
		e.it, e.err = Prepare(st, p, key, compression, tmpDir)
		close(e.done)
	}
	<-e.done
	release := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		e.users--
		if e.users == 0 {
			delete(s.items, k)
			if e.it != nil {
				e.it.Close()
			}
		}
	}
	if e.err != nil {
		release()
		return nil, e.err
	}
	return &Item{Info: e.it.Info, file: e.it.file, release: release}, nil
}

// hashCounter hashes and counts bytes written through it.
type hashCounter struct {
	h *blake3.Hasher
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: blake3.New(32, nil)} }

// newCounter counts without hashing: for a stream that is the archive
// itself (CompressionNone), whose hash the archive reader or writer
// computes anyway.
func newCounter() *hashCounter { return &hashCounter{} }

func (c *hashCounter) Write(p []byte) (int, error) {
	if c.h != nil {
		c.h.Write(p)
	}
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) sum() (d treehash.Digest) {
	c.h.Sum(d[:0])
	return d
}

// Prepare archives p from st into a temporary file under tmpDir,
// compressed, and makes its record, signed by key (unsigned when nil).
// Contents that no longer hash to the registered tree hash are refused:
// a damaged path must not spread. So is an impure path (store.ErrImpure):
// whatever sends or signs a path prepares it here.
func Prepare(st *store.Store, p storepath.Path, key *sign.SecretKey, compression, tmpDir string) (*Item, error) {
	pi, err := st.QueryPathInfo(p)
	if err != nil {
		return nil, err
	}
	if pi.Impure != "" {
		return nil, &store.ImpureError{Path: st.Logical(p), Why: pi.Impure, Doing: "sign or send it"}
	}
	f, err := os.CreateTemp(tmpDir, "nexis-archive-")
	if err != nil {
		return nil, fmt.Errorf("archiving %s: %w", st.Logical(p), err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("archiving %s: %w", st.Logical(p), err)
	}
	it := &Item{file: f}
	fail := func(err error) (*Item, error) {
		it.Close()
		return nil, fmt.Errorf("archiving %s: %w", st.Logical(p), err)
	}
	fh := newHashCounter()
	if compression == archive.CompressionNone {
		fh = newCounter()
	}
	bw := bufio.NewWriterSize(io.MultiWriter(f, fh), 256<<10)
	zw, err := archive.Compress(bw, compression)
	if err != nil {
		return fail(err)
	}
	sum, err := archive.Write(zw, st.Physical(p))
	if err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if sum.TreeHash != pi.TreeHash {
		return fail(fmt.Errorf("its contents hash to %s but %s is registered: the path is damaged (run %s)", sum.TreeHash, pi.TreeHash, hint.Command("store verify", "--check-contents")))
	}
	in := &Info{
		StoreDir:       st.LogicalDir(),
		Path:           p,
		Compression:    compression,
		FileSize:       fh.n,
		ArchiveHash:    sum.Hash,
		ArchiveSize:    sum.Size,
		TreeHash:       pi.TreeHash,
		References:     sortedRefs(pi.References),
		Deriver:        pi.Deriver,
		ContentAddress: pi.ContentAddress,
	}
	if fh.h != nil {
		in.FileHash = fh.sum()
	} else {
		in.FileHash = sum.Hash
	}
	in.URL = archiveName(in)
	if key != nil {
		in.Sign(key)
	}
	it.Info = in
	return it, nil
}

func sortedRefs(refs []storepath.Path) []storepath.Path {
	out := slices.Clone(refs)
	slices.SortFunc(out, func(a, b storepath.Path) int { return strings.Compare(a.Hash, b.Hash) })
	return slices.CompactFunc(out, func(a, b storepath.Path) bool { return a.Hash == b.Hash })
}

// ErrVerify is wrapped when an archive does not match its record.
var ErrVerify = errors.New("archive does not match its signed record")

// received is an archive unpacked into the store's temporary area and
// checked against its record, waiting for store.Import.
type received struct {
	req store.ImportRequest
	tmp string // the TempPath to remove afterwards
}

func (r *received) cleanup() {
	if r != nil && r.tmp != "" {
		os.RemoveAll(r.tmp)
		r.tmp = ""
	}
}

// readers are the buffers archives are parsed from: one per download
// allocated and cleared anew costs more than a small archive's parsing.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// receive reads the stored archive of in from r (exactly FileSize bytes
// when in.FileSize is set), unpacks it at a new TempPath of st and
// checks it against the record. Nothing is registered; on error nothing
// is left behind.
func receive(st *store.Store, in *Info, r io.Reader) (*received, error) {
	dir, err := st.TempPath()
	if err != nil {
		return nil, err
	}
	rec := &received{tmp: dir}
	ok := false
	defer func() {
		if !ok {
			rec.cleanup()
		}
	}()
	// A hostile server may send without end: the record bounds the
	// stored size (one byte more shows it lied), or, without FileSize,
	// the worst zstd expansion of the signed archive size.
	limit := in.FileSize + 1
	if in.FileSize == 0 {
		limit = in.ArchiveSize + in.ArchiveSize/8 + 1<<20
	}
	fh := newHashCounter()
	// An uncompressed stream is the archive: its hash is the archive
	// hash, checked below, and hashing it twice checks nothing more.
	// A record that says otherwise is checked as it says.
	plain := in.Compression == archive.CompressionNone && in.FileHash == in.ArchiveHash && in.FileSize == in.ArchiveSize
	if plain {
		fh = newCounter()
	}
	src := io.TeeReader(io.LimitReader(r, limit), fh)
	dec, err := archive.Decompress(src, in.Compression)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	// The signed size bounds what a hostile stream (a decompression
	// bomb) can make us write.
	br := readers.Get().(*bufio.Reader)
	br.Reset(io.LimitReader(dec, in.ArchiveSize+1))
	defer func() { br.Reset(nil); readers.Put(br) }()
	sum, err := archive.Unpack(br, dir)
	if err != nil {
		if in.FileSize > 0 && fh.n > in.FileSize {
			return nil, fmt.Errorf("%s: %w: the stored file is larger than the record's %d bytes", in.FullPath(), ErrVerify, in.FileSize)
		}
		return nil, fmt.Errorf("%s: %w", in.FullPath(), err)
	}
	if err := archive.RequireEOF(br); err != nil {
		return nil, fmt.Errorf("%s: %w", in.FullPath(), err)
	}
	// The rest of the stored file (a compressed stream's last frame
	// bytes) belongs to this item: read it so that the file hash is
	// complete and a framed stream stays in step.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, fmt.Errorf("%s: %w", in.FullPath(), err)
	}
	switch {
	case sum.Size != in.ArchiveSize:
		return nil, fmt.Errorf("%s: %w: %d bytes, the record says %d", in.FullPath(), ErrVerify, sum.Size, in.ArchiveSize)
	case sum.Hash != in.ArchiveHash:
		return nil, fmt.Errorf("%s: %w: it hashes to %s, the record says %s", in.FullPath(), ErrVerify, sum.Hash, in.ArchiveHash)
	case sum.TreeHash != in.TreeHash:
		return nil, fmt.Errorf("%s: %w: its tree hashes to %s, the record says %s", in.FullPath(), ErrVerify, sum.TreeHash, in.TreeHash)
	case in.FileSize > 0 && fh.n != in.FileSize:
		return nil, fmt.Errorf("%s: %w: the stored file has %d bytes, the record says %d", in.FullPath(), ErrVerify, fh.n, in.FileSize)
	case !plain && !in.FileHash.IsZero() && fh.sum() != in.FileHash:
		return nil, fmt.Errorf("%s: %w: the stored file hashes to %s, the record says %s", in.FullPath(), ErrVerify, fh.sum(), in.FileHash)
	}
	rec.req = store.ImportRequest{
		Dir:            dir,
		Target:         in.Path,
		Files:          sum.Files,
		TreeHash:       sum.TreeHash,
		References:     in.References,
		Deriver:        in.Deriver,
		ContentAddress: in.ContentAddress,
	}
	ok = true
	return rec, nil
}

// importAll registers everything received in one batch and removes the
// temporary directories, whatever happens.
func importAll(st *store.Store, recs []*received) ([]*store.PathInfo, error) {
	defer func() {
		for _, r := range recs {
			r.cleanup()
		}
	}()
	reqs := make([]store.ImportRequest, len(recs))
	for i, r := range recs {
		reqs[i] = r.req
	}
	return st.Import(reqs)
}

// TopoSort orders a closure so that every path comes after its
// references, ties broken by hash so the order is stable.
func TopoSort(st *store.Store, ps []storepath.Path) ([]storepath.Path, error) {
	in := map[string]bool{}
	for _, p := range ps {
		in[p.Hash] = true
	}
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, func(a, b storepath.Path) int { return strings.Compare(a.Hash, b.Hash) })
	done := map[string]bool{}
	out := make([]storepath.Path, 0, len(ps))
	// Iterative post-order: deep closures must not blow the stack.
	type frame struct {
		p      storepath.Path
		refs   []storepath.Path
		loaded bool
		next   int
	}
	for _, root := range sorted {
		if done[root.Hash] {
			continue
		}
		done[root.Hash] = true
		stack := []*frame{{p: root}}
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			if !f.loaded {
				refs, err := st.References(f.p)
				if err != nil {
					return nil, err
				}
				f.refs, f.loaded = sortedRefs(refs), true
			}
			if f.next < len(f.refs) {
				r := f.refs[f.next]
				f.next++
				if in[r.Hash] && !done[r.Hash] {
					done[r.Hash] = true
					stack = append(stack, &frame{p: r})
				}
				continue
			}
			out = append(out, f.p)
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}

// ExportMagic starts an export file.
const ExportMagic = "nexis-export-1\n"

// writeItem writes one item of an export file or an import command.
func writeItem(w io.Writer, it *Item) error {
	rec := it.Info.Marshal()
	if _, err := fmt.Fprintf(w, "path %d\n", len(rec)); err != nil {
		return err
	}
	if _, err := w.Write(rec); err != nil {
		return err
	}
	f, err := it.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return err
	}
	if n != it.Info.FileSize {
		return fmt.Errorf("%s: the archive file changed while it was sent", it.Info.FullPath())
	}
	return nil
}

// readLine reads one protocol line (without its newline), refusing
// long ones.
func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		frag, err := br.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > 4096 {
			return "", fmt.Errorf("protocol line longer than 4096 bytes")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		return string(b[:len(b)-1]), nil
	}
}

// readRecord reads "path <n>\n" and the record that follows.
func readRecord(br *bufio.Reader, storeDir string) (*Info, error) {
	l, err := readLine(br)
	if err != nil {
		return nil, err
	}
	ns, ok := strings.CutPrefix(l, "path ")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n <= 0 || n > MaxInfoSize {
		return nil, fmt.Errorf("expected \"path <record length>\", got %q", abbreviate(l))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("reading a record: %w", err)
	}
	in, err := ParseInfo(b, storeDir)
	if err != nil {
		return nil, err
	}
	if in.URL == "" || in.FileSize == 0 {
		return nil, fmt.Errorf("%w: %s: an item needs URL and FileSize", ErrBadInfo, in.FullPath())
	}
	return in, nil
}

// ImportStats say what Import (or one serve import) did.
type ImportStats struct {
	Items      int   `json:"items"`
	Registered int   `json:"registered"`
	Bytes      int64 `json:"bytes"`
}

// readItems receives n items (n < 0: until "end\n") from br, each
// checked against trusted before its archive is read, and registers them
// in one batch. A path already valid is read past. Any failure registers
// nothing.
func readItems(st *store.Store, br *bufio.Reader, n int, trusted *sign.Trusted) (*ImportStats, error) {
	stats, recs, err := receiveItems(st, br, n, trusted)
	if err != nil {
		return nil, err
	}
	return registerItems(st, stats, recs)
}

// receiveItems is the part of readItems that reads the stream: the
// items are unpacked and checked, not registered; on error nothing is
// left behind.
func receiveItems(st *store.Store, br *bufio.Reader, n int, trusted *sign.Trusted) (*ImportStats, []*received, error) {
	stats := &ImportStats{}
	var recs []*received
	fail := func(err error) (*ImportStats, []*received, error) {
		for _, r := range recs {
			r.cleanup()
		}
		return nil, nil, err
	}
	for i := 0; n < 0 || i < n; i++ {
		if n < 0 {
			b, err := br.Peek(4)
			if err == nil && string(b) == "end\n" {
				br.Discard(4)
				break
			}
		}
		in, err := readRecord(br, st.LogicalDir())
		if err != nil {
			return fail(fmt.Errorf("item %d: %w", i+1, err))
		}
		if err := in.Verify(trusted); err != nil {
			return fail(fmt.Errorf("refusing %w", err))
		}
		stats.Items++
		stats.Bytes += in.FileSize
		body := io.LimitReader(br, in.FileSize)
		if ok, err := st.IsValid(in.Path); err != nil {
			return fail(err)
		} else if ok {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return fail(err)
			}
			continue
		}
		rec, err := receive(st, in, body)
		if err != nil {
			return fail(fmt.Errorf("refusing %w", err))
		}
		recs = append(recs, rec)
	}
	return stats, recs, nil
}

// registerItems is the rest of readItems: recs, received, are
// registered in one batch (and their temporary trees go, whatever
// happens).
func registerItems(st *store.Store, stats *ImportStats, recs []*received) (*ImportStats, error) {
	if _, err := importAll(st, recs); err != nil {
		return nil, err
	}
	stats.Registered = len(recs)
	return stats, nil
}

// Import reads an export file from r and registers its paths, all or
// none, accepting only records signed by a trusted key.
func Import(st *store.Store, r io.Reader, trusted *sign.Trusted) (*ImportStats, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(ExportMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != ExportMagic {
		return nil, fmt.Errorf("not a nexis export file (it does not start with %q)", strings.TrimSpace(ExportMagic))
	}
	stats, err := readItems(st, br, -1, trusted)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := archive.RequireEOF(br); err != nil {
		return nil, fmt.Errorf("import: data after the end of the export file")
	}
	return stats, nil
}

// ExportOptions tune Export and Copy.
type ExportOptions struct {
	// Key signs the records. Without one they go unsigned, and no
	// importer or substituter will accept them: only for inspection.
	Key *sign.SecretKey
	// Compression of the stored archives (default zstd).
	Compression string
	// Jobs is how many paths are archived at once (default 4).
	Jobs int
	// TempDir holds archives on their way (default os.TempDir()).
	TempDir string
	// Progress is told how many paths and bytes were sent.
	Progress func(done, total int, bytes int64)
	// Shared, when set, prepares each path once for the copies that
	// send it at the same time (all with the same Key).
	Shared *SharedItems
}

func (o *ExportOptions) fill() {
	if o.Compression == "" {
		o.Compression = archive.CompressionZstd
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
}

// Export writes ps (in dependency order among themselves; their
// references are not added) as an export file to w.
func Export(ctx context.Context, st *store.Store, ps []storepath.Path, w io.Writer, opts ExportOptions) error {
	opts.fill()
	if err := st.RefuseImpure(ps, "export it"); err != nil {
		return err
	}
	ordered, err := TopoSort(st, ps)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(ExportMagic); err != nil {
		return err
	}
	next, stop := prepareAll(ctx, st, ordered, opts)
	defer stop()
	var sent int64
	for i := range ordered {
		it, err := next()
		if err != nil {
			return err
		}
		err = writeItem(bw, it)
		it.Close()
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		sent += it.Info.FileSize
		if opts.Progress != nil {
			opts.Progress(i+1, len(ordered), sent)
		}
	}
	if _, err := bw.WriteString("end\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// prepareAll archives ps, Jobs at a time and a bounded window ahead of
// the consumer, and hands them out in order through next. stop cancels
// and removes whatever was prepared but not taken.
func prepareAll(ctx context.Context, st *store.Store, ps []storepath.Path, opts ExportOptions) (next func() (*Item, error), stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		it  *Item
		err error
	}
	results := make([]chan result, len(ps))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	window := make(chan struct{}, 2*opts.Jobs)
	workers := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i, p := range ps {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case workers <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-workers }()
				var it *Item
				var err error
				if opts.Shared != nil {
					it, err = opts.Shared.prepare(st, p, opts.Key, opts.Compression, opts.TempDir)
				} else {
					it, err = Prepare(st, p, opts.Key, opts.Compression, opts.TempDir)
				}
				results[i] <- result{it, err}
			}()
		}
	}()
	k := 0
	next = func() (*Item, error) {
		if k >= len(ps) {
			return nil, io.EOF
		}
		select {
		case r := <-results[k]:
			k++
			<-window
			return r.it, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	stop = func() {
		cancel()
		wg.Wait()
		for ; k < len(ps); k++ {
			select {
			case r := <-results[k]:
				if r.it != nil {
					r.it.Close()
				}
			default:
			}
		}
	}
	return next, stop
}
