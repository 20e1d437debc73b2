package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
)

// Substituter fetches store paths from binary caches instead of building
// them. It remembers every record it looked up for its lifetime (one
// build), so that overlapping closures are asked for once.
type Substituter struct {
	// Sources are asked in order; the first with a trusted record wins.
	Sources []Source
	// Trusted decides which records are accepted.
	Trusted *sign.Trusted
	// Jobs is the number of parallel requests (default 16).
	Jobs int
	// Progress, when set, is told about downloads as they finish.
	Progress func(SubstituteProgress)

	run sync.Mutex // one Substitute at a time: concurrent closures overlap

	mu      sync.Mutex
	lookups map[string]*lookup
	checked map[Source]*sourceCheck
}

// SubstituteProgress is the state of one Substitute call.
type SubstituteProgress struct {
	Paths, TotalPaths int
	// Bytes are stored (compressed) bytes downloaded.
	Bytes, TotalBytes int64
}

// SubstituteStats say what Substitute did.
type SubstituteStats struct {
	Paths int
	Bytes int64
	// From names the caches used.
	From []string
}

type lookup struct {
	done chan struct{}
	info *Info
	src  Source
	err  error
}

type sourceCheck struct {
	once sync.Once
	err  error
}

// NewSubstituter opens the caches at urls.
func NewSubstituter(urls []string, trusted *sign.Trusted) (*Substituter, error) {
	s := &Substituter{Trusted: trusted}
	for _, u := range urls {
		src, err := OpenSource(u)
		if err != nil {
			return nil, err
		}
		s.Sources = append(s.Sources, src)
	}
	return s, nil
}

func (s *Substituter) jobs() int {
	if s.Jobs <= 0 {
		return 16
	}
	return s.Jobs
}

// checkSource makes sure src serves our store directory, once.
func (s *Substituter) checkSource(ctx context.Context, st *store.Store, src Source) error {
	s.mu.Lock()
	if s.checked == nil {
		s.checked = map[Source]*sourceCheck{}
	}
	c := s.checked[src]
	if c == nil {
		c = &sourceCheck{}
		s.checked[src] = c
	}
	s.mu.Unlock()
	c.once.Do(func() {
		dir, err := src.StoreDir(ctx)
		if err == nil && dir != st.LogicalDir() {
			err = fmt.Errorf("%s serves the store %s, not %s", src.URL(), dir, st.LogicalDir())
		}
		c.err = err
	})
	return c.err
}

// Info returns p's trusted record and the cache that has it. The error
// wraps ErrNotFound when no cache has p; a record that is there but
// malformed or not trusted gives an error that says so (and does not
// wrap ErrNotFound), so that a user sees a refusal, not an absence.
func (s *Substituter) Info(ctx context.Context, st *store.Store, p storepath.Path) (*Info, Source, error) {
	s.mu.Lock()
	if s.lookups == nil {
		s.lookups = map[string]*lookup{}
	}
	l, ok := s.lookups[p.Hash]
	if !ok {
		l = &lookup{done: make(chan struct{})}
		s.lookups[p.Hash] = l
	}
	s.mu.Unlock()
	if ok {
		select {
		case <-l.done:
			return l.info, l.src, l.err
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	l.info, l.src, l.err = s.lookupInfo(ctx, st, p)
	if ctx.Err() != nil {
		// A cancelled lookup says nothing about the caches: forget it.
		s.mu.Lock()
		delete(s.lookups, p.Hash)
		s.mu.Unlock()
	}
	close(l.done)
	return l.info, l.src, l.err
}

func (s *Substituter) lookupInfo(ctx context.Context, st *store.Store, p storepath.Path) (*Info, Source, error) {
	var problems []string
	for _, src := range s.Sources {
		if err := s.checkSource(ctx, st, src); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		b, err := src.Info(ctx, p)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		in, err := ParseInfo(b, st.LogicalDir())
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", src.URL(), p.Base(), err))
			continue
		}
		if in.Path != p {
			problems = append(problems, fmt.Sprintf("%s: the record of %s describes %s", src.URL(), p.Base(), in.Path.Base()))
			continue
		}
		if err := in.Verify(s.Trusted); err != nil {
			problems = append(problems, fmt.Sprintf("%s: refusing %v", src.URL(), err))
			continue
		}
		return in, src, nil
	}
	if len(problems) == 0 {
		return nil, nil, fmt.Errorf("%s: %w of %d substituter(s)", st.Logical(p), ErrNotFound, len(s.Sources))
	}
	return nil, nil, fmt.Errorf("%s cannot be substituted: %s", st.Logical(p), strings.Join(problems, "; "))
}

// Substitute makes want valid in st with everything they refer to,
// from the caches: records are looked up and archives downloaded many at
// a time, each download starting as soon as its record is known; every
// archive is checked against its signed record, and all of it is
// registered in one atomic batch. If any path of the closure cannot be
// had, the error wraps ErrNotFound (or says why a record was refused);
// if any download fails, nothing is registered.
func (s *Substituter) Substitute(ctx context.Context, st *store.Store, want []storepath.Path) (*SubstituteStats, error) {
	return s.substitute(ctx, st, want, nil)
}

// SubstituteFixed is Substitute for the output p of a fixed-output
// derivation, whose content address ca the consumer knows from the
// derivation: a record that gives another address (or none, so that
// nothing would be checked) is refused, whoever signed it, and the bytes
// are checked against ca on arrival (store.Import). An address that
// cannot be checked from the path (an unpacked archive) is refused too:
// the consumer fetches such a path from its origin instead.
func (s *Substituter) SubstituteFixed(ctx context.Context, st *store.Store, p storepath.Path, ca contentaddr.CA) (*SubstituteStats, error) {
	if !ca.Checkable() {
		return nil, fmt.Errorf("%s: its content address %s cannot be checked against a cache's copy: %w", st.Logical(p), ca, ErrNotFound)
	}
	return s.substitute(ctx, st, []storepath.Path{p}, map[string]string{p.Hash: ca.String()})
}

// ErrContentAddress is wrapped when a record gives a fixed output
// another content address than its derivation.
var ErrContentAddress = errors.New("the record's content address is not the derivation's")

func (s *Substituter) substitute(ctx context.Context, st *store.Store, want []storepath.Path, expect map[string]string) (*SubstituteStats, error) {
	s.run.Lock()
	defer s.run.Unlock()
	if len(s.Sources) == 0 {
		return nil, fmt.Errorf("no substituters: %w", ErrNotFound)
	}
	// Temporary roots first: the moment the batch registers, a running
	// collector must already see that this process needs the paths.
	if err := st.AddTempRoots(want...); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		seen    = map[string]bool{}
		recs    []*received
		from    = map[string]bool{}
		prog    SubstituteProgress
		first   error
		wg      sync.WaitGroup
		lookups = make(chan struct{}, s.jobs())
		dls     = make(chan struct{}, s.jobs())
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	acquire := func(sem chan struct{}) bool {
		select {
		case sem <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fetch := func(in *Info, src Source) {
		defer wg.Done()
		if !acquire(dls) {
			return
		}
		rec, err := s.download(ctx, st, in, src)
		<-dls
		if err != nil {
			fail(err)
			return
		}
		mu.Lock()
		recs = append(recs, rec)
		prog.Paths++
		prog.Bytes += in.FileSize
		p := prog
		mu.Unlock()
		if s.Progress != nil {
			s.Progress(p)
		}
	}
	var visit func(p storepath.Path)
	visit = func(p storepath.Path) {
		mu.Lock()
		if seen[p.Hash] || first != nil {
			mu.Unlock()
			return
		}
		seen[p.Hash] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !acquire(lookups) {
				return
			}
			valid, err := st.IsValid(p)
			var in *Info
			var src Source
			if err == nil && !valid {
				in, src, err = s.Info(ctx, st, p)
			}
			if ca, ok := expect[p.Hash]; ok && err == nil && !valid && in.ContentAddress != ca {
				err = fmt.Errorf("%s: refusing %s's record: %w (the record says %q, the derivation %q)", st.Logical(p), src.URL(), ErrContentAddress, in.ContentAddress, ca)
			}
			<-lookups
			if err != nil {
				fail(err)
				return
			}
			if valid {
				return
			}
			mu.Lock()
			prog.TotalPaths++
			prog.TotalBytes += in.FileSize
			from[src.URL()] = true
			mu.Unlock()
			wg.Add(1)
			go fetch(in, src)
			for _, r := range in.References {
				if r.Hash != p.Hash {
					visit(r)
				}
			}
		}()
	}
	for _, p := range want {
		visit(p)
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		for _, r := range recs {
			r.cleanup()
		}
		return nil, first
	}
	stats := &SubstituteStats{Paths: len(recs), Bytes: prog.Bytes}
	for u := range from {
		stats.From = append(stats.From, u)
	}
	slices.Sort(stats.From)
	if len(recs) == 0 {
		return stats, nil
	}
	if _, err := importAll(st, recs); err != nil {
		return nil, err
	}
	return stats, nil
}

// download fetches and unpacks one archive, trying again when the
// transfer (not the contents) failed. The error names the first failure
// too: after a server died mid-download, the last one is only "connection
// refused".
func (s *Substituter) download(ctx context.Context, st *store.Store, in *Info, src Source) (*received, error) {
	var first, last error
	attempts := 0
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		attempts++
		rc, err := src.Archive(ctx, in)
		if err == nil {
			var rec *received
			rec, err = receive(st, in, rc)
			rc.Close()
			if err == nil {
				return rec, nil
			}
			err = fmt.Errorf("downloading from %s: %w", src.URL(), err)
		}
		last = err
		if first == nil {
			first = err
		}
		// Contents that do not match a signed record were tampered with
		// (or the record is wrong): fetching again will not help.
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrVerify) || errors.Is(err, archive.ErrFormat) || ctx.Err() != nil {
			break
		}
	}
	if attempts > 1 && first.Error() != last.Error() {
		return nil, fmt.Errorf("%w (after %d attempts; the first failed with: %v)", last, attempts, first)
	}
	return nil, last
}

// Restore fetches p, which is registered but damaged or missing on disk
// (store.VerifyReport.Damaged), from the caches and swaps it in
// (store.Restore): the record must be trusted, and the archive must be
// the registered tree (or, for a content-addressed path registered with
// other bytes, what its address names). It reports the cache used.
func (s *Substituter) Restore(ctx context.Context, st *store.Store, p storepath.Path) (string, error) {
	in, src, err := s.Info(ctx, st, p)
	if err != nil {
		return "", err
	}
	pi, err := st.QueryPathInfo(p)
	if err != nil {
		return "", err
	}
	if in.TreeHash != pi.TreeHash && pi.ContentAddress == "" {
		return "", fmt.Errorf("%s: %s has another build of it (tree %s, registered %s)", st.Logical(p), src.URL(), in.TreeHash, pi.TreeHash)
	}
	if in.ContentAddress != pi.ContentAddress {
		return "", fmt.Errorf("%s: refusing %s's record: %w (the record says %q, the store %q)", st.Logical(p), src.URL(), ErrContentAddress, in.ContentAddress, pi.ContentAddress)
	}
	rec, err := s.download(ctx, st, in, src)
	if err != nil {
		return "", err
	}
	defer rec.cleanup()
	if _, err := st.Restore(store.RestoreRequest{Path: p, Src: rec.req.Dir, Move: true}); err != nil {
		return "", err
	}
	return src.URL(), nil
}
