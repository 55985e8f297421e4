package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fileMeta is what the Hub says about a file (get_hf_file_metadata).
type fileMeta struct {
	commit   string // X-Repo-Commit
	etag     string // X-Linked-Etag or ETag, normalised
	size     int64  // X-Linked-Size or Content-Length
	location string // where to GET it
}

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{file}, quoted as
// huggingface_hub's hf_hub_url quotes it.
func (c *Client) resolveURL(repo, rev, file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return fmt.Sprintf("%s/%s/resolve/%s/%s", c.Endpoint, repo, url.PathEscape(rev), strings.Join(parts, "/"))
}

// normalizeETag strips a weak marker and quotes, as huggingface_hub does.
func normalizeETag(e string) string {
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

// meta sends the HEAD request, following only relative redirects (a
// renamed repository); an absolute redirect (an LFS file on a CDN) is not
// followed: its Location is where the file is downloaded from, and its
// X-Linked-* headers describe the file.
func (c *Client) meta(ctx context.Context, repo, commit, file string) (*fileMeta, error) {
	u := c.resolveURL(repo, commit, file)
	hc := *c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return nil, err
		}
		c.authorize(req)
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", repo, file, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			e := c.hubError(resp, repo)
			if errors.Is(e, ErrEntryNotFound) {
				if hc := resp.Header.Get("X-Repo-Commit"); commitPattern.MatchString(hc) {
					markNoExist(filepath.Join(c.Cache, RepoFolder(repo)), hc, file)
				}
			}
			return nil, e
		}
		loc := resp.Header.Get("Location")
		redirect := resp.StatusCode >= 300 && resp.StatusCode < 400
		if redirect {
			lu, err := url.Parse(loc)
			if err != nil || loc == "" {
				return nil, fmt.Errorf("%s: %s: redirect to a bad Location %q", repo, file, loc)
			}
			if lu.Host == "" {
				u = req.URL.ResolveReference(lu).String()
				continue
			}
		}
		m := &fileMeta{commit: resp.Header.Get("X-Repo-Commit"), etag: normalizeETag(resp.Header.Get("X-Linked-Etag"))}
		if m.etag == "" {
			m.etag = normalizeETag(resp.Header.Get("ETag"))
		}
		size := resp.Header.Get("X-Linked-Size")
		if size == "" && !redirect {
			size = resp.Header.Get("Content-Length")
		}
		m.location = u
		if redirect {
			m.location = loc
		}
		switch {
		case m.commit == "":
			return nil, fmt.Errorf("%s: %s: the answer from %s has no X-Repo-Commit: is HF_ENDPOINT a Hugging Face Hub (a proxy or firewall may be in the way)?", repo, file, c.Endpoint)
		case m.etag == "" || strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == "..":
			return nil, fmt.Errorf("%s: %s: the Hub gave no usable ETag (%q): the file cannot be cached reliably", repo, file, m.etag)
		}
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %s: the Hub gave no file size (X-Linked-Size / Content-Length %q)", repo, file, size)
		}
		m.size = n
		return m, nil
	}
	return nil, fmt.Errorf("%s: %s: too many redirects", repo, file)
}

func markNoExist(folder, commit, file string) {
	p := filepath.Join(folder, ".no_exist", commit, filepath.FromSlash(file))
	if os.MkdirAll(filepath.Dir(p), 0o755) == nil {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			f.Close()
		}
	}
}

// fetch makes snapshots/<commit>/<file> present: nothing to do when it
// is, a link to an existing blob, or a download.
func (c *Client) fetch(ctx context.Context, repo, folder, commit, file string) error {
	pointer := filepath.Join(folder, "snapshots", commit, filepath.FromSlash(file))
	if st, err := os.Stat(pointer); err == nil && !st.IsDir() {
		return nil
	}
	m, err := c.meta(ctx, repo, commit, file)
	if err != nil {
		return err
	}
	blob := filepath.Join(folder, "blobs", m.etag)
	lockPath := filepath.Join(c.Cache, ".locks", RepoFolder(repo), m.etag+".lock")
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	unlock, err := lockFile(lockPath)
	if err != nil {
		return fmt.Errorf("hub cache: lock %s: %w", lockPath, err)
	}
	defer unlock()
	if _, err := os.Stat(blob); err != nil {
		if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
			return fmt.Errorf("hub cache: %w", err)
		}
		if err := c.download(ctx, repo, file, m, blob); err != nil {
			return err
		}
	}
	return linkPointer(blob, pointer)
}

// linkPointer makes pointer a relative symlink to blob
// (../../blobs/<etag>, one more ../ per subfolder), replacing any
// existing entry atomically.
func linkPointer(blob, pointer string) error {
	if err := os.MkdirAll(filepath.Dir(pointer), 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	rel, err := filepath.Rel(filepath.Dir(pointer), blob)
	if err != nil {
		rel = blob
	}
	tmp := fmt.Sprintf("%s.%d.tmp-link", pointer, time.Now().UnixNano())
	if err := os.Symlink(rel, tmp); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if err := os.Rename(tmp, pointer); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hub cache: %w", err)
	}
	return nil
}

// isSHA256 reports whether an ETag is an LFS object id (a sha256).
func isSHA256(etag string) bool {
	if len(etag) != 64 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// download writes the file to blob: into blob+".incomplete", resumed
// from what an earlier attempt left there, checked for size and (LFS
// files) sha256, then renamed. A cut connection is retried, resuming.
func (c *Client) download(ctx context.Context, repo, file string, m *fileMeta, blob string) error {
	incomplete := blob + ".incomplete"
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	var last error
	for try := 0; try < attempts; try++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		resumed, err := c.downloadOnce(ctx, repo, file, m, incomplete)
		if err == nil {
			err = verify(incomplete, m)
			if err == nil {
				if err := os.Rename(incomplete, blob); err != nil {
					return fmt.Errorf("hub cache: %w", err)
				}
				return nil
			}
			// A corrupted blob: never cached. Start over once if the
			// damage may come from an earlier attempt's bytes.
			os.Remove(incomplete)
			if !resumed {
				return fmt.Errorf("%s: %s: %w", repo, file, err)
			}
		}
		var he *HTTPError
		if errors.As(err, &he) {
			return err
		}
		last = err
	}
	return fmt.Errorf("%s: %s: download failed after %d attempts (run again to resume from %s): %w", repo, file, attempts, incomplete, last)
}

// verify checks the downloaded size and, for LFS files, the sha256.
func verify(path string, m *fileMeta) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() != m.size {
		return fmt.Errorf("downloaded %d bytes, the Hub announced %d: the file is corrupted and was not cached", st.Size(), m.size)
	}
	if !isSHA256(m.etag) {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(m.etag) {
		return fmt.Errorf("sha256 %s differs from the Hub's %s (X-Linked-Etag): the file is corrupted and was not cached", got, m.etag)
	}
	return nil
}

// downloadOnce appends the rest of the file to incomplete; resumed says
// whether bytes from an earlier attempt were kept.
func (c *Client) downloadOnce(ctx context.Context, repo, file string, m *fileMeta, incomplete string) (resumed bool, err error) {
	f, err := os.OpenFile(incomplete, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("hub cache: %w", err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	if have > m.size {
		if err := f.Truncate(0); err != nil {
			return false, err
		}
		have, _ = f.Seek(0, io.SeekStart)
	}
	if have == m.size && m.size > 0 {
		return true, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.location, nil)
	if err != nil {
		return false, err
	}
	c.authorize(req)
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return have > 0, fmt.Errorf("%s: %s: %w", repo, file, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 400:
		return have > 0, c.hubError(resp, repo)
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return false, fmt.Errorf("%s: %s: asked for bytes %d- and got Content-Range %q", repo, file, have, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		// No range support, or no resume: start over.
		if have > 0 {
			if err := f.Truncate(0); err != nil {
				return false, err
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return false, err
			}
			have = 0
		}
	default:
		return false, fmt.Errorf("%s: %s: unexpected HTTP %d from %s", repo, file, resp.StatusCode, m.location)
	}
	var w io.Writer = f
	if c.Progress != nil {
		p := &progress{fn: c.Progress, ev: Progress{Repo: repo, File: file, Done: have, Total: m.size}}
		p.fn(p.ev)
		w = io.MultiWriter(f, p)
		defer func() {
			if err == nil {
				p.ev.Done = m.size
				p.fn(p.ev)
			}
		}()
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return have > 0, fmt.Errorf("%s: %s: download cut: %w", repo, file, err)
	}
	return have > 0, f.Sync()
}

// rangeStart reads the first byte of "bytes a-b/n".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

// progress reports bytes as they arrive, at most every 256 KiB.
type progress struct {
	fn      func(Progress)
	ev      Progress
	pending int64
}

func (p *progress) Write(b []byte) (int, error) {
	p.ev.Done += int64(len(b))
	p.pending += int64(len(b))
	if p.pending >= 256<<10 {
		p.pending = 0
		p.fn(p.ev)
	}
	return len(b), nil
}
