package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rerank-go/rerank/internal/atomicfile"
)

// weightFiles are a model's weight files in the order transformers
// prefers them.
var (
	modelWeights   = []string{"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"}
	adapterWeights = []string{"adapter_model.safetensors", "adapter_model.bin"}
)

// plan lists the files kind needs among those has reports, the weight
// index (whose shards are needed too) when one is chosen.
func plan(kind Kind, has func(string) bool, what string) (files []string, index string, err error) {
	need := func(name string) error {
		if !has(name) {
			return fmt.Errorf("%s has no %s: is it a %s?", what, name, kindNoun(kind))
		}
		files = append(files, name)
		return nil
	}
	first := func(names []string) error {
		for _, n := range names {
			if has(n) {
				files = append(files, n)
				if strings.HasSuffix(n, ".index.json") {
					index = n
				}
				return nil
			}
		}
		return fmt.Errorf("%s has none of %s: is it a %s?", what, strings.Join(names, ", "), kindNoun(kind))
	}
	switch kind {
	case Model:
		if err := need("config.json"); err != nil {
			return nil, "", err
		}
		if err := first(modelWeights); err != nil {
			return nil, "", err
		}
	case Adapter:
		if err := need("adapter_config.json"); err != nil {
			return nil, "", err
		}
		if err := first(adapterWeights); err != nil {
			return nil, "", err
		}
	case Tokenizer:
		if err := need("tokenizer.json"); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", fmt.Errorf("hub: unknown kind %d", int(kind))
	}
	for _, t := range TokenizerFiles {
		if has(t) && (kind != Tokenizer || t != "tokenizer.json") {
			files = append(files, t)
		}
	}
	return files, index, nil
}

func kindNoun(k Kind) string {
	switch k {
	case Model:
		return "transformers model repository"
	case Adapter:
		return "PEFT adapter repository"
	}
	return "repository with a tokenizer.json"
}

// shards reads the shard file names of a weight index.
func shards(indexPath string) ([]string, error) {
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", indexPath, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range idx.WeightMap {
		if s == "" || s != path.Clean(s) || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "..") || strings.Contains(s, "\\") {
			return nil, fmt.Errorf("%s: weight_map names %q, which is not a file of the repository", indexPath, s)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// repoInfo is the part of /api/models/{repo}/revision/{rev} rerank reads.
type repoInfo struct {
	ID       string `json:"id"`
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
	} `json:"siblings"`
}

func (c *Client) resolve(ctx context.Context, r Ref, kind Kind) (*Resolved, error) {
	folder := filepath.Join(c.Cache, RepoFolder(r.Repo))
	rev := r.Rev()
	res := &Resolved{Source: r.String(), Repo: r.Repo, Revision: rev}
	if c.Offline {
		commit, err := cachedCommit(folder, rev)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (looked in %s: %v); unset HF_HUB_OFFLINE to download it", r, ErrOffline, c.Cache, err)
		}
		res.Commit = commit
		res.Dir = filepath.Join(folder, "snapshots", commit)
		if err := c.fromCache(r, kind, res.Dir); err != nil {
			return nil, err
		}
		return res, nil
	}
	info, err := c.revisionInfo(ctx, r)
	if err != nil {
		// Unreachable Hub: use a complete cached snapshot, as
		// huggingface_hub does.
		var ne net.Error
		var ue *url.Error
		if errors.As(err, &ne) || errors.As(err, &ue) {
			if commit, cerr := cachedCommit(folder, rev); cerr == nil {
				dir := filepath.Join(folder, "snapshots", commit)
				if c.fromCache(r, kind, dir) == nil {
					res.Commit, res.Dir = commit, dir
					return res, nil
				}
			}
		}
		return nil, err
	}
	if !commitPattern.MatchString(info.SHA) {
		return nil, fmt.Errorf("%s: the Hub at %s gave no commit for revision %q (sha %q)", r, c.Endpoint, rev, info.SHA)
	}
	res.Commit = info.SHA
	res.Dir = filepath.Join(folder, "snapshots", info.SHA)
	avail := map[string]bool{}
	for _, s := range info.Siblings {
		avail[s.RFilename] = true
	}
	files, index, err := plan(kind, func(n string) bool { return avail[n] }, r.String())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("hub cache: %w", err)
	}
	if err := writeCacheTag(c.Cache); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := c.fetch(ctx, r.Repo, folder, info.SHA, f); err != nil {
			return nil, err
		}
	}
	if index != "" {
		sh, err := shards(filepath.Join(res.Dir, index))
		if err != nil {
			return nil, err
		}
		for _, s := range sh {
			if !avail[s] {
				return nil, fmt.Errorf("%s: %s names shard %s, which the repository lacks", r, index, s)
			}
			if err := c.fetch(ctx, r.Repo, folder, info.SHA, s); err != nil {
				return nil, err
			}
		}
	}
	if rev != info.SHA {
		if err := writeRef(folder, rev, info.SHA); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// fromCache checks that a cached snapshot holds every file kind needs.
func (c *Client) fromCache(r Ref, kind Kind, dir string) error {
	has := func(n string) bool {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(n)))
		return err == nil && !st.IsDir()
	}
	what := fmt.Sprintf("the cached snapshot %s of %s", dir, r)
	files, index, err := plan(kind, has, what)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrOffline)
	}
	_ = files
	if index != "" {
		sh, err := shards(filepath.Join(dir, index))
		if err != nil {
			return err
		}
		for _, s := range sh {
			if !has(s) {
				return fmt.Errorf("%s lacks shard %s: %w", what, s, ErrOffline)
			}
		}
	}
	return nil
}

// cachedCommit finds the commit a revision names in the cache: the
// revision itself when it is a commit with a snapshot, else refs/<rev>.
func cachedCommit(folder, rev string) (string, error) {
	if commitPattern.MatchString(rev) {
		if st, err := os.Stat(filepath.Join(folder, "snapshots", rev)); err == nil && st.IsDir() {
			return rev, nil
		}
		return "", fmt.Errorf("no snapshots/%s", rev)
	}
	b, err := os.ReadFile(filepath.Join(folder, "refs", filepath.FromSlash(rev)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("no refs/%s", rev)
		}
		return "", err
	}
	commit := strings.TrimSpace(string(b))
	if !commitPattern.MatchString(commit) {
		return "", fmt.Errorf("refs/%s holds %q, not a commit", rev, commit)
	}
	return commit, nil
}

// writeRef records the commit a branch or tag points to, atomically,
// without a newline (as huggingface_hub writes it), only when it changed.
func writeRef(folder, rev, commit string) error {
	p := filepath.Join(folder, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(p); err == nil && string(b) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	return atomicfile.WriteFile(p, []byte(commit))
}

// writeCacheTag marks the cache for backup tools (CACHEDIR.TAG), as
// huggingface_hub does.
func writeCacheTag(cache string) error {
	p := filepath.Join(cache, "CACHEDIR.TAG")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	tag := "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by huggingface_hub.\n# For information about cache directory tags, see:\n#\thttps://bford.info/cachedir/\n"
	return atomicfile.WriteFile(p, []byte(tag))
}

// revisionInfo asks the Hub which commit a revision is and which files
// it holds.
func (c *Client) revisionInfo(ctx context.Context, r Ref) (*repoInfo, error) {
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", c.Endpoint, r.Repo, url.PathEscape(r.Rev()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c.authorize(req)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (set HF_HUB_OFFLINE=1 to use the cache only)", r, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, c.hubError(resp, r.Repo)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s answered HTTP %d", r, u, resp.StatusCode)
	}
	var info repoInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: %s: not the Hub's revision info: %w", r, u, err)
	}
	return &info, nil
}

// authorize adds the token and the headers huggingface_hub sends.
func (c *Client) authorize(req *http.Request) {
	req.Header.Set("User-Agent", "rerank (Go); hf_hub-compatible")
	if c.Token != "" && sameHost(req.URL, c.Endpoint) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

func sameHost(u *url.URL, endpoint string) bool {
	e, err := url.Parse(endpoint)
	return err == nil && strings.EqualFold(u.Host, e.Host) && u.Scheme == e.Scheme
}
