// Package cache moves store paths between machines: binary caches that
// any static file or HTTP server can serve (file://, http://, https://)
// or an S3 bucket holds (s3://, see s3.go), export files, and a remote
// nexis over SSH (ssh://). Everything that
// arrives is checked against a path-info record (Info) signed by a
// trusted key (store/sign) before it is registered, in one atomic batch
// with its references (store.Import).
//
// # Binary cache layout
//
// A cache is a directory tree, served as it is:
//
//	nexis-cache-info                  "StoreDir: /store" (the logical store its paths belong to)
//	<hash>.info                       the path-info record of <store>/../<hash>-<name>
//	archive/<hex>.nxar.zst            a zstd-compressed archive (store/archive), named by
//	                                  the BLAKE3 of the compressed file
//
// Uploads write the archive first and its record last, and records in
// dependency order (references first), so a reader never finds a record
// whose archive or references are missing. Over HTTP an upload is a PUT
// of each file (nginx's dav module, `dav_methods PUT`, accepts them).
//
// # Export files and the serve protocol
//
// An export file (`nexis store export`) is
//
//	"nexis-export-1\n" item... "end\n"
//	item = "path " <decimal length of the record> "\n" <record> <FileSize bytes of the stored archive>
//
// with items in dependency order. `nexis store serve --stdio`, run by
// ssh on the remote side of an ssh:// copy, speaks line commands on
// stdin and answers on stdout:
//
//	client: "nexis-serve-1\n"            server: "nexis-serve-1 <store dir>\n"
//	client: "query <n>\n" + n lines "<hash>-<name>\n"
//	                                     server: "valid <m>\n" + the m of them that are valid
//	client: "import <n>\n" + n items (as in an export file)
//	                                     server: "ok <n>\n" once all n are registered, atomically,
//	                                             or "error <message>\n" (nothing registered)
//	client: "quit\n" or end of input     server exits
//
// The server checks every record against its own trusted keys
// (<root>/etc/nexis/trusted-keys): the client cannot widen them.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/nexisos/nexis/store/storepath"
)

// ErrNotFound is wrapped when a cache does not have a path.
var ErrNotFound = errors.New("not in the cache")

// CacheInfoFile names a cache's description, at its top.
const CacheInfoFile = "nexis-cache-info"

// Source is a binary cache substitutes come from.
type Source interface {
	// URL is the cache's address, for messages.
	URL() string
	// StoreDir is the logical store directory the cache serves; it reads
	// nexis-cache-info (once).
	StoreDir(ctx context.Context) (string, error)
	// Info fetches p's record; an error wrapping ErrNotFound when the
	// cache does not have p.
	Info(ctx context.Context, p storepath.Path) ([]byte, error)
	// Archive opens the stored archive at the record's URL.
	Archive(ctx context.Context, in *Info) (io.ReadCloser, error)
}

// Dest is where `nexis copy` sends paths.
type Dest interface {
	URL() string
	// Have reports which of ps the destination has already.
	Have(ctx context.Context, storeDir string, ps []storepath.Path) (map[string]bool, error)
	// Put sends n items; next yields them in dependency order, and an
	// Item is the Dest's to Close once sent. Put stops at the first
	// error; what it had sent completely stays (a cache) or nothing
	// registers (a remote store).
	Put(ctx context.Context, storeDir string, n int, next func() (*Item, error), progress func(sent int64)) error
	Close() error
}

// OpenSource opens a binary cache by URL: file:///dir,
// http(s)://host/prefix, s3://bucket/prefix?endpoint=...
func OpenSource(rawURL string) (Source, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		return &fileCache{url: rawURL, dir: u.Path}, nil
	case "http", "https":
		return newHTTPCache(rawURL, u), nil
	case "s3":
		return newS3Cache(rawURL, u)
	}
	return nil, fmt.Errorf("substituter %s: %s:// cannot be a substituter: use file://, http://, https:// or s3://", rawURL, u.Scheme)
}

// OpenDest opens a copy destination by URL: file:///dir,
// http(s)://host/prefix, s3://bucket/prefix?endpoint=... or
// ssh://[user@]host[:port].
func OpenDest(ctx context.Context, rawURL string, sshOpts SSHOptions) (Dest, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		return &fileCache{url: rawURL, dir: u.Path}, nil
	case "http", "https":
		return newHTTPCache(rawURL, u), nil
	case "s3":
		return newS3Cache(rawURL, u)
	case "ssh":
		return dialSSH(ctx, u, sshOpts)
	}
	return nil, fmt.Errorf("%s: unknown scheme %q: use file://, http://, https://, s3:// or ssh://", rawURL, u.Scheme)
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cache URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("cache URL %s: a file:// URL names a local directory: file:///dir", raw)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("cache URL %s: want an absolute directory, file:///dir", raw)
		}
	case "http", "https", "ssh":
		if u.Host == "" {
			return nil, fmt.Errorf("cache URL %s: no host", raw)
		}
	case "s3":
		if u.Host == "" || u.User != nil || u.Port() != "" {
			return nil, fmt.Errorf("cache URL %s: want s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION", raw)
		}
	case "":
		return nil, fmt.Errorf("cache URL %q: no scheme: use file:///dir, http(s)://host/prefix, s3://bucket/prefix or ssh://user@host", raw)
	}
	return u, nil
}

// infoName is where a path's record lives in a cache.
func infoName(p storepath.Path) string { return p.Hash + ".info" }

// archiveName is where a compressed archive lives in a cache.
func archiveName(in *Info) string {
	ext := ".nxar"
	if in.Compression == "zstd" {
		ext += ".zst"
	}
	return "archive/" + in.FileHash.Hex() + ext
}

func cacheInfoText(storeDir string) string { return "StoreDir: " + storeDir + "\n" }

// parseCacheInfo reads the StoreDir of nexis-cache-info.
func parseCacheInfo(src string, b []byte) (string, error) {
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "StoreDir: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s: %s has no StoreDir line", src, CacheInfoFile)
}
