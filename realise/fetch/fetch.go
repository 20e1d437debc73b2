// Package fetch downloads what fixed-output derivations name: files over
// http, https and file URLs, and git commits through the git binary. It
// only fetches and hashes; deciding whether a hash is the right one, and
// registering anything, is the caller's business.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"lukechampine.com/blake3"
)

// NewHash returns a hasher for algo ("sha256" or "blake3").
func NewHash(algo string) (hash.Hash, error) {
	switch algo {
	case "sha256":
		return sha256.New(), nil
	case "blake3":
		return blake3.New(32, nil), nil
	}
	return nil, fmt.Errorf("unknown hash algorithm %q: want sha256 or blake3", algo)
}

// HashFile returns the hex digest of the file at p.
func HashFile(algo, p string) (string, error) {
	h, err := NewHash(algo)
	if err != nil {
		return "", err
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HashMismatchError says a download is not what the config pinned.
type HashMismatchError struct {
	URL, Algo, Want, Got string
}

// ErrHashMismatch is what every HashMismatchError is (errors.Is).
var ErrHashMismatch = errors.New("hash mismatch")

func (e *HashMismatchError) Is(target error) bool { return target == ErrHashMismatch }

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("hash mismatch for %s:\n  specified: %s:%s\n  got:       %s:%s", e.URL, e.Algo, e.Want, e.Algo, e.Got)
}

// client has no overall timeout (sources can be large and links slow);
// stalls are caught by the transport's header timeout and by the caller's
// context.
var client = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
	},
}

// URL downloads rawURL into the new file dst and returns the hex digest
// of its bytes under algo.
func URL(ctx context.Context, rawURL, dst, algo string) (string, error) {
	h, err := NewHash(algo)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("url %q: %w", rawURL, err)
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return "", fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		body = f
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return "", fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		req.Header.Set("User-Agent", "nexis")
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("fetching %s: server said %s", rawURL, resp.Status)
		}
		body = resp.Body
	default:
		return "", fmt.Errorf("fetching %s: scheme %q is not supported (want http, https or file)", rawURL, u.Scheme)
	}
	defer body.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	_, err = io.Copy(io.MultiWriter(out, h), ctxReader{ctx, body})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a file:// copy when the build is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// gitCmd runs git with a configuration that neither asks questions nor
// reads the user's settings, so a fetch means the same on every machine.
func gitCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ASKPASS=",
		"LC_ALL=C",
	)
	return cmd
}

func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := gitCmd(ctx, dir, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("git is not installed: fetching git sources needs the git binary")
		}
		msg := strings.TrimSpace(string(out))
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, msg)
	}
	return string(out), nil
}

// Git checks out commit rev of the repository at url into the new
// directory dst, without .git.
func Git(ctx context.Context, repoURL, rev, dst string) error {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("fetching %s: %w", repoURL, err)
	}
	gitDir := dst + ".git"
	defer os.RemoveAll(gitDir)
	if _, err := runGit(ctx, "", "init", "--quiet", "--bare", gitDir); err != nil {
		return fmt.Errorf("fetching %s: %w", repoURL, err)
	}
	// A shallow fetch of the commit itself is the cheap way; servers that
	// refuse to serve an unadvertised commit get a full fetch instead.
	if _, err := runGit(ctx, gitDir, "fetch", "--quiet", "--depth", "1", "--no-tags", repoURL, rev); err != nil {
		if _, err2 := runGit(ctx, gitDir, "fetch", "--quiet", "--tags", repoURL, "+refs/heads/*:refs/remotes/origin/*"); err2 != nil {
			return fmt.Errorf("fetching %s: %w", repoURL, err2)
		}
	}
	if _, err := runGit(ctx, gitDir, "cat-file", "-e", rev+"^{commit}"); err != nil {
		return fmt.Errorf("fetching %s: commit %s is not in the repository", repoURL, rev)
	}
	if _, err := runGit(ctx, "", "--git-dir", gitDir, "--work-tree", dst, "checkout", "--quiet", "--force", rev, "--", "."); err != nil {
		return fmt.Errorf("fetching %s at %s: %w", repoURL, rev, err)
	}
	return nil
}

// Tag is a release tag of a repository and the commit it names.
type Tag struct {
	Name   string
	Commit string
}

// Tags lists the tags of the repository at url (peeled to commits).
func Tags(ctx context.Context, repoURL string) ([]Tag, error) {
	out, err := runGit(ctx, "", "ls-remote", "--tags", repoURL)
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repoURL, err)
	}
	commits := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		id, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		name, ok := strings.CutPrefix(ref, "refs/tags/")
		if !ok {
			continue
		}
		if base, peeled := strings.CutSuffix(name, "^{}"); peeled {
			// An annotated tag: the peeled line names the commit.
			commits[base] = id
			continue
		}
		if _, seen := commits[name]; !seen {
			commits[name] = id
		}
	}
	tags := make([]Tag, 0, len(commits))
	for n, c := range commits {
		tags = append(tags, Tag{Name: n, Commit: c})
	}
	sort.Slice(tags, func(i, j int) bool { return CompareVersions(tags[i].Name, tags[j].Name) < 0 })
	return tags, nil
}

// Newest returns the newest release among tags by version order, skipping
// tags without a digit and pre-releases (rc, alpha, beta) when a release
// exists.
func Newest(tags []Tag) (Tag, bool) {
	var best Tag
	found, bestPre := false, true
	for _, t := range tags {
		if !strings.ContainsAny(t.Name, "0123456789") {
			continue
		}
		pre := isPrerelease(t.Name)
		switch {
		case !found, bestPre && !pre, pre == bestPre && CompareVersions(t.Name, best.Name) > 0:
			best, found, bestPre = t, true, pre
		}
	}
	return best, found
}

func isPrerelease(tag string) bool {
	l := strings.ToLower(tag)
	for _, w := range []string{"rc", "alpha", "beta", "pre", "dev"} {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// VersionOf strips a tag to its version: "v1.10" → "1.10",
// "release-2.0" → "2.0".
func VersionOf(tag string) string {
	i := strings.IndexAny(tag, "0123456789")
	if i < 0 {
		return tag
	}
	return tag[i:]
}

// CompareVersions orders version strings as people read them: digit runs
// compare as numbers (1.10 > 1.9), everything else bytewise.
func CompareVersions(a, b string) int {
	a, b = VersionOf(a), VersionOf(b)
	for a != "" && b != "" {
		ra, restA := chunk(a)
		rb, restB := chunk(b)
		na, errA := strconv.ParseUint(ra, 10, 64)
		nb, errB := strconv.ParseUint(rb, 10, 64)
		switch {
		case errA == nil && errB == nil:
			if na != nb {
				if na < nb {
					return -1
				}
				return 1
			}
		case errA == nil:
			return 1 // a number sorts after text: 1.0 > 1.rc
		case errB == nil:
			return -1
		default:
			if c := strings.Compare(ra, rb); c != 0 {
				return c
			}
		}
		a, b = restA, restB
	}
	switch {
	case a == b:
		return 0
	case b == "":
		return tailOrder(a)
	default:
		return -tailOrder(b)
	}
}

// tailOrder says how a version that goes on compares with one that
// stopped: "1.0.1" > "1.0", but "2.0-rc1" < "2.0".
func tailOrder(rest string) int {
	if rest[0] == '.' || (rest[0] >= '0' && rest[0] <= '9') {
		return 1
	}
	return -1
}

// chunk splits off the leading run of digits or of non-digits.
func chunk(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}
