package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store/storepath"
)

// fileCache is a binary cache in a local directory.
type fileCache struct {
	url string
	dir string
}

func (c *fileCache) URL() string { return c.url }

func (c *fileCache) StoreDir(ctx context.Context) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, CacheInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s is not a nexis binary cache: it has no %s", c.url, CacheInfoFile)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.url, err)
	}
	return parseCacheInfo(c.url, b)
}

func (c *fileCache) Info(ctx context.Context, p storepath.Path) ([]byte, error) {
	f, err := os.Open(filepath.Join(c.dir, infoName(p)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %s: %w", c.url, p.Base(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.url, err)
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxInfoSize+1))
}

func (c *fileCache) Archive(ctx context.Context, in *Info) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(c.dir, filepath.FromSlash(in.URL)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %s: archive %s is missing: %w", c.url, in.Path.Base(), in.URL, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.url, err)
	}
	return f, nil
}

func (c *fileCache) Have(ctx context.Context, storeDir string, ps []storepath.Path) (map[string]bool, error) {
	if err := c.checkStoreDir(storeDir); err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, p := range ps {
		if _, err := os.Stat(filepath.Join(c.dir, infoName(p))); err == nil {
			have[p.Hash] = true
		}
	}
	return have, nil
}

// checkStoreDir refuses to mix stores in one cache; a new cache is fine.
func (c *fileCache) checkStoreDir(storeDir string) error {
	have, err := c.StoreDir(context.Background())
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(c.dir, CacheInfoFile)); errors.Is(statErr, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if have != storeDir {
		return fmt.Errorf("%s holds paths of the store %s, not %s", c.url, have, storeDir)
	}
	return nil
}

// writeAtomic writes data to name under the cache atomically
// (internal/durable), so a reader sees all of it or nothing.
func (c *fileCache) writeAtomic(name string, r io.Reader) error {
	dst := filepath.Join(c.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	err := durable.Write(dst, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

func (c *fileCache) Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(int64)) error {
	if err := c.checkStoreDir(storeDir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", c.url, err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, CacheInfoFile)); errors.Is(err, os.ErrNotExist) {
		if err := c.writeAtomic(CacheInfoFile, strings.NewReader(cacheInfoText(storeDir))); err != nil {
			return err
		}
	}
	return putCache(ctx, n, next, progress, 1, func(it *Item) error {
		if _, err := os.Stat(filepath.Join(c.dir, filepath.FromSlash(it.Info.URL))); err == nil {
			return nil // named by its hash: the same bytes are there
		}
		f, err := it.Open()
		if err != nil {
			return err
		}
		defer f.Close()
		return c.writeAtomic(it.Info.URL, f)
	}, func(in *Info) error {
		return c.writeAtomic(infoName(in.Path), bytes.NewReader(in.Marshal()))
	})
}

func (c *fileCache) Close() error { return nil }

// putCache uploads the archives of n items, jobs at a time, then their
// records in the order given (references first), so that no record is
// visible before its archive and its references' records.
func putCache(ctx context.Context, n int, next func() (*Item, error), progress func(int64), jobs int, putArchive func(*Item) error, putInfo func(*Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	infos := make([]*Info, n)
	var (
		mu    sync.Mutex
		k     int
		first error
		wg    sync.WaitGroup
	)
	setErr := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	for w := 0; w < jobs; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if k >= n || first != nil {
					mu.Unlock()
					return
				}
				i := k
				k++
				it, err := next()
				mu.Unlock()
				if err != nil {
					setErr(err)
					return
				}
				err = putArchive(it)
				it.Close()
				if err != nil {
					setErr(fmt.Errorf("uploading %s: %w", it.Info.FullPath(), err))
					return
				}
				infos[i] = it.Info
				if progress != nil {
					progress(it.Info.FileSize)
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := putInfo(in); err != nil {
			return fmt.Errorf("uploading the record of %s: %w", in.FullPath(), err)
		}
	}
	return nil
}

// httpCache is a binary cache behind an HTTP server: GET to read, PUT to
// upload.
type httpCache struct {
	url    string
	base   *url.URL
	client *http.Client

	once     sync.Once
	storeDir string
	sdErr    error
}

// transport is shared so that connections to a cache are kept alive
// across the many small requests of a closure.
var transport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConns:          256,
	MaxIdleConnsPerHost:   64,
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   30 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	// Archives are compressed already; a transparently gunzipped body
	// would not hash to FileHash.
	DisableCompression: true,
	ForceAttemptHTTP2:  true,
}

func newHTTPCache(raw string, u *url.URL) *httpCache {
	b := *u
	b.Path = strings.TrimSuffix(b.Path, "/")
	b.RawPath = ""
	return &httpCache{url: raw, base: &b, client: &http.Client{Transport: transport}}
}

func (c *httpCache) URL() string { return c.url }

func (c *httpCache) at(name string) string {
	u := *c.base
	u.Path = u.Path + "/" + name
	return u.String()
}

// get issues a GET and returns the response of a 200; a 404 (or 403,
// which S3 answers for a missing key) wraps ErrNotFound.
func (c *httpCache) get(ctx context.Context, name string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.at(name), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp, nil
	case http.StatusNotFound, http.StatusForbidden, http.StatusGone:
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %w", c.at(name), ErrNotFound)
	}
	resp.Body.Close()
	return nil, fmt.Errorf("GET %s: %s", c.at(name), resp.Status)
}

// do sends req, trying again a few times when the connection fails
// before any response (a restarting server, a dropped keep-alive).
func (c *httpCache) do(req *http.Request) (*http.Response, error) {
	var last error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*4 {
		if attempt > 0 {
			if req.GetBody == nil && req.Body != nil {
				break
			}
			if req.GetBody != nil {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				req.Body = b
			}
			select {
			case <-time.After(wait):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		resp, err := c.client.Do(req)
		if err == nil {
			return resp, nil
		}
		last = err
		if req.Context().Err() != nil {
			break
		}
	}
	return nil, last
}

func (c *httpCache) StoreDir(ctx context.Context) (string, error) {
	c.once.Do(func() {
		resp, err := c.get(ctx, CacheInfoFile)
		if errors.Is(err, ErrNotFound) {
			c.sdErr = fmt.Errorf("%s is not a nexis binary cache: it has no %s", c.url, CacheInfoFile)
			return
		}
		if err != nil {
			c.sdErr = err
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			c.sdErr = fmt.Errorf("%s: %w", c.url, err)
			return
		}
		c.storeDir, c.sdErr = parseCacheInfo(c.url, b)
	})
	return c.storeDir, c.sdErr
}

func (c *httpCache) Info(ctx context.Context, p storepath.Path) ([]byte, error) {
	resp, err := c.get(ctx, infoName(p))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxInfoSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", c.at(infoName(p)), err)
	}
	return b, nil
}

func (c *httpCache) Archive(ctx context.Context, in *Info) (io.ReadCloser, error) {
	resp, err := c.get(ctx, in.URL)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// exists asks with HEAD whether name is there.
func (c *httpCache) exists(ctx context.Context, name string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.at(name), nil)
	if err != nil {
		return false, err
	}
	resp, err := c.do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound, http.StatusForbidden, http.StatusGone:
		return false, nil
	}
	return false, fmt.Errorf("HEAD %s: %s", c.at(name), resp.Status)
}

func (c *httpCache) Have(ctx context.Context, storeDir string, ps []storepath.Path) (map[string]bool, error) {
	if err := c.checkStoreDir(ctx, storeDir); err != nil {
		return nil, err
	}
	return haveByExists(ctx, ps, c.exists)
}

func (c *httpCache) checkStoreDir(ctx context.Context, storeDir string) error {
	ok, err := c.exists(ctx, CacheInfoFile)
	if err != nil || !ok {
		return err // a new cache
	}
	have, err := c.StoreDir(ctx)
	if err != nil {
		return err
	}
	if have != storeDir {
		return fmt.Errorf("%s holds paths of the store %s, not %s", c.url, have, storeDir)
	}
	return nil
}

func (c *httpCache) put(ctx context.Context, name string, body func() (io.ReadCloser, error), size int64) error {
	b, err := body()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.at(name), b)
	if err != nil {
		b.Close()
		return err
	}
	req.ContentLength = size
	req.GetBody = body
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("PUT %s: %s (does the server accept uploads? nginx needs dav_methods PUT)", c.at(name), resp.Status)
	}
	return nil
}

func bytesBody(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func (c *httpCache) Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(int64)) error {
	if err := c.checkStoreDir(ctx, storeDir); err != nil {
		return err
	}
	if ok, err := c.exists(ctx, CacheInfoFile); err != nil {
		return err
	} else if !ok {
		text := []byte(cacheInfoText(storeDir))
		if err := c.put(ctx, CacheInfoFile, bytesBody(text), int64(len(text))); err != nil {
			return err
		}
	}
	return putCache(ctx, n, next, progress, 4, func(it *Item) error {
		if ok, err := c.exists(ctx, it.Info.URL); err == nil && ok {
			return nil
		}
		return c.put(ctx, it.Info.URL, func() (io.ReadCloser, error) { return it.Open() }, it.Info.FileSize)
	}, func(in *Info) error {
		rec := in.Marshal()
		return c.put(ctx, infoName(in.Path), bytesBody(rec), int64(len(rec)))
	})
}

func (c *httpCache) Close() error { return nil }

// parallel runs fn(0..n-1), jobs at a time, and returns the first error.
// haveByExists answers Have for a cache that can only be asked one
// path's record at a time (HEAD over HTTP or S3): 16 questions at once.
func haveByExists(ctx context.Context, ps []storepath.Path, exists func(context.Context, string) (bool, error)) (map[string]bool, error) {
	have := map[string]bool{}
	var mu sync.Mutex
	err := parallel(ctx, len(ps), 16, func(i int) error {
		ok, err := exists(ctx, infoName(ps[i]))
		if ok {
			mu.Lock()
			have[ps[i].Hash] = true
			mu.Unlock()
		}
		return err
	})
	return have, err
}

func parallel(ctx context.Context, n, jobs int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < min(jobs, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= n || first != nil || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
