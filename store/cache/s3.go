package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/nexisos/nexis/store/storepath"
)

// An S3 cache is the cache layout (see the package comment) under a key
// prefix of a bucket, on AWS or any server that speaks the S3 API:
//
//	s3://BUCKET[/PREFIX][?endpoint=HOST[:PORT]|URL][&region=R][&scheme=http|https][&profile=P]
//
// The client is minio-go. Credentials come from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the shared
// credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
// profile from ?profile=, AWS_PROFILE or "default"), else MINIO_ACCESS_KEY
// and MINIO_SECRET_KEY; with none, requests go unsigned (a public
// bucket, read only). Instance metadata is not asked: nexis never
// reaches an address the URL does not name.
//
// The bucket must exist. Archives larger than the part size go up as
// multipart uploads, parts in parallel; the client retries a failed
// request with exponential backoff (ten times, at most a second apart),
// so a server that restarts mid-copy costs a pause, not the copy.
// Downloads are checked like every other cache's (receive), and a
// download cut short is tried again by the substituter.

// s3PartSize is the multipart part size: archives up to it go up in one
// PUT. S3 wants at least 5 MiB and at most 10,000 parts per object.
const s3PartSize = 16 << 20

type s3Cache struct {
	url    string
	bucket string
	prefix string // "" or "a/b/" with the slash
	client *minio.Client

	partSize uint64

	once     sync.Once
	storeDir string
	sdErr    error
}

// s3Params are the query parameters an s3:// URL may carry.
var s3Params = map[string]bool{"endpoint": true, "region": true, "scheme": true, "profile": true}

func newS3Cache(raw string, u *url.URL) (*s3Cache, error) {
	q := u.Query()
	for k := range q {
		if !s3Params[k] {
			return nil, fmt.Errorf("cache URL %s: unknown parameter %q: an s3:// URL takes endpoint, region, scheme and profile", raw, k)
		}
	}
	scheme := q.Get("scheme")
	switch scheme {
	case "", "https", "http":
	default:
		return nil, fmt.Errorf("cache URL %s: scheme=%s: want http or https", raw, scheme)
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	if strings.Contains(endpoint, "://") {
		e, err := url.Parse(endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || strings.Trim(e.Path, "/") != "" {
			return nil, fmt.Errorf("cache URL %s: endpoint=%s: want HOST[:PORT] or http(s)://HOST[:PORT]", raw, endpoint)
		}
		if scheme != "" && scheme != e.Scheme {
			return nil, fmt.Errorf("cache URL %s: scheme=%s contradicts endpoint=%s", raw, scheme, endpoint)
		}
		scheme, endpoint = e.Scheme, e.Host
	}
	if scheme == "" {
		scheme = "https"
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Profile: q.Get("profile")},
		&credentials.EnvMinio{},
	})
	client, err := minio.New(endpoint, &minio.Options{
		Creds:     creds,
		Secure:    scheme == "https",
		Region:    q.Get("region"),
		Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("cache URL %s: %w", raw, err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Cache{url: raw, bucket: u.Host, prefix: prefix, client: client, partSize: s3PartSize}, nil
}

func (c *s3Cache) URL() string { return c.url }

func (c *s3Cache) key(name string) string { return c.prefix + name }

// s3Error explains a failed request on name; a missing key wraps
// ErrNotFound.
func (c *s3Cache) s3Error(op, name string, err error) error {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket"):
		return fmt.Errorf("%s: %s: %w", c.url, name, ErrNotFound)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("%s: the bucket %s does not exist: create it first (nexis does not create buckets)", c.url, c.bucket)
	case resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %s %s: %v (check the credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the shared credentials file; S3 also answers 403 for a missing key when they lack s3:ListBucket)", c.url, op, name, err)
	}
	return fmt.Errorf("%s: %s %s: %w", c.url, op, name, err)
}

// missingBucket explains a missing key by a missing bucket, which a
// GET of a key cannot tell apart; nil when the bucket is there.
func (c *s3Cache) missingBucket(ctx context.Context) error {
	ok, err := c.client.BucketExists(ctx, c.bucket)
	if err != nil {
		return c.s3Error("HEAD", "the bucket", err)
	}
	if !ok {
		return fmt.Errorf("%s: the bucket %s does not exist: create it first (nexis does not create buckets)", c.url, c.bucket)
	}
	return nil
}

// get opens name for reading: one GET, made here, so that a missing
// key is an error now. (Client.GetObject would HEAD first: twice the
// requests for a closure of small paths.)
func (c *s3Cache) get(ctx context.Context, name string) (io.ReadCloser, error) {
	body, _, _, err := minio.Core{Client: c.client}.GetObject(ctx, c.bucket, c.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, c.s3Error("GET", name, err)
	}
	return body, nil
}

func (c *s3Cache) StoreDir(ctx context.Context) (string, error) {
	c.once.Do(func() {
		r, err := c.get(ctx, CacheInfoFile)
		if errors.Is(err, ErrNotFound) {
			c.sdErr = c.missingBucket(ctx)
			if c.sdErr == nil {
				c.sdErr = fmt.Errorf("%s is not a nexis binary cache: it has no %s", c.url, CacheInfoFile)
			}
			return
		}
		if err != nil {
			c.sdErr = err
			return
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, 64<<10))
		if err != nil {
			c.sdErr = c.s3Error("GET", CacheInfoFile, err)
			return
		}
		c.storeDir, c.sdErr = parseCacheInfo(c.url, b)
	})
	return c.storeDir, c.sdErr
}

func (c *s3Cache) Info(ctx context.Context, p storepath.Path) ([]byte, error) {
	r, err := c.get(ctx, infoName(p))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxInfoSize+1))
	if err != nil {
		return nil, c.s3Error("GET", infoName(p), err)
	}
	return b, nil
}

func (c *s3Cache) Archive(ctx context.Context, in *Info) (io.ReadCloser, error) {
	return c.get(ctx, in.URL)
}

// exists asks with HEAD whether name is there.
func (c *s3Cache) exists(ctx context.Context, name string) (bool, error) {
	_, err := c.client.StatObject(ctx, c.bucket, c.key(name), minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if err := c.s3Error("HEAD", name, err); errors.Is(err, ErrNotFound) {
		return false, nil
	} else {
		return false, err
	}
}

func (c *s3Cache) Have(ctx context.Context, storeDir string, ps []storepath.Path) (map[string]bool, error) {
	if err := c.checkStoreDir(ctx, storeDir); err != nil {
		return nil, err
	}
	return haveByExists(ctx, ps, c.exists)
}

// checkStoreDir refuses to mix stores in one cache; a new cache is fine.
func (c *s3Cache) checkStoreDir(ctx context.Context, storeDir string) error {
	ok, err := c.exists(ctx, CacheInfoFile)
	if err != nil {
		return err
	}
	if !ok {
		return c.missingBucket(ctx)
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

func (c *s3Cache) put(ctx context.Context, name string, r io.Reader, size int64, contentType string) error {
	_, err := c.client.PutObject(ctx, c.bucket, c.key(name), r, size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    c.partSize,
		NumThreads:  4,
	})
	if err != nil {
		return c.s3Error("PUT", name, err)
	}
	return nil
}

func (c *s3Cache) Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(int64)) error {
	if err := c.checkStoreDir(ctx, storeDir); err != nil {
		return err
	}
	if ok, err := c.exists(ctx, CacheInfoFile); err != nil {
		return err
	} else if !ok {
		text := []byte(cacheInfoText(storeDir))
		if err := c.put(ctx, CacheInfoFile, bytes.NewReader(text), int64(len(text)), "text/plain"); err != nil {
			return err
		}
	}
	return putCache(ctx, n, next, progress, 4, func(it *Item) error {
		if ok, err := c.exists(ctx, it.Info.URL); err != nil {
			return err
		} else if ok {
			return nil // named by its hash: the same bytes are there
		}
		f, err := it.Open()
		if err != nil {
			return err
		}
		defer f.Close()
		return c.put(ctx, it.Info.URL, f, it.Info.FileSize, "application/octet-stream")
	}, func(in *Info) error {
		rec := in.Marshal()
		return c.put(ctx, infoName(in.Path), bytes.NewReader(rec), int64(len(rec)), "text/plain")
	})
}

func (c *s3Cache) Close() error { return nil }
