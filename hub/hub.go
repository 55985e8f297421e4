// Package hub resolves Hugging Face Hub ids ("org/name", "org/name@revision")
// to local directories, sharing the cache of Python's huggingface_hub.
//
// A reference is resolved in this order: a local directory (or file) of
// that name; the cache, laid out exactly as huggingface_hub lays it, so
// Python and rerank share one copy:
//
//	<cache>/models--org--name/refs/<revision>          the commit a branch or tag points to
//	<cache>/models--org--name/blobs/<etag>             file contents (etag: sha256 for LFS files, git sha1 otherwise)
//	<cache>/models--org--name/snapshots/<commit>/<file> relative symlinks into blobs
//	<cache>/models--org--name/.no_exist/<commit>/<file> files the Hub said do not exist
//
// and otherwise a download from the Hub endpoint, of only the files the
// kind of reference needs (a model's config, weights or shard index and
// its shards, and tokenizer files; an adapter's config and weights; a
// tokenizer's files). Downloads resume from blobs/<etag>.incomplete with a
// Range request, are checked against the sha256 the Hub publishes for LFS
// files (X-Linked-Etag), and reach the cache only by rename.
//
// A Client holds every setting; FromEnv reads them from the environment
// variables huggingface_hub reads. A nil *Client behaves as FromEnv().
package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// DefaultEndpoint is the public Hub.
const DefaultEndpoint = "https://huggingface.co"

// DefaultRevision is the branch used when a reference names none.
const DefaultRevision = "main"

// Client resolves references. Its zero value is not usable; build one
// with FromEnv or fill every field.
type Client struct {
	// Cache is the hub cache directory (HF_HUB_CACHE).
	Cache string
	// Endpoint is the Hub's base URL, without a trailing slash.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer <token>" to the
	// endpoint's host (never to the hosts it redirects to).
	Token string
	// Offline uses the cache only (HF_HUB_OFFLINE=1).
	Offline bool
	// HTTP is the client requests go through; nil means one with a
	// 10-second connect timeout and no overall timeout.
	HTTP *http.Client
	// Progress, when set, is called as each file downloads: first with
	// Done = the bytes already on disk, then as bytes arrive, and last
	// with Done == Total. Files already cached report nothing.
	Progress func(Progress)
	// Attempts is how many times a cut download is tried in one call,
	// each resuming where the last stopped (0 means 3).
	Attempts int
}

// Progress reports one file's download.
type Progress struct {
	Repo, File  string
	Done, Total int64
}

// FromEnv returns a Client configured as huggingface_hub configures
// itself: HF_HUB_CACHE, else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
// else ~/.cache/huggingface/hub; HF_ENDPOINT; HF_TOKEN, else the token file
// (HF_TOKEN_PATH, else HF_HOME/token); HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE)
// set to 1, ON, YES or TRUE.
func FromEnv() *Client {
	home := os.Getenv("HF_HOME")
	if home == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			if h, err := os.UserHomeDir(); err == nil {
				xdg = filepath.Join(h, ".cache")
			}
		}
		home = filepath.Join(xdg, "huggingface")
	}
	home = expandHome(home)
	cache := os.Getenv("HF_HUB_CACHE")
	if cache == "" {
		cache = os.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	if cache == "" {
		cache = filepath.Join(home, "hub")
	}
	endpoint := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	token := os.Getenv("HF_TOKEN")
	if token == "" {
		token = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	if token == "" {
		path := os.Getenv("HF_TOKEN_PATH")
		if path == "" {
			path = filepath.Join(home, "token")
		}
		if b, err := os.ReadFile(expandHome(path)); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	offline := envTrue(os.Getenv("HF_HUB_OFFLINE"))
	if os.Getenv("HF_HUB_OFFLINE") == "" {
		offline = envTrue(os.Getenv("TRANSFORMERS_OFFLINE"))
	}
	return &Client{Cache: expandHome(cache), Endpoint: endpoint, Token: token, Offline: offline}
}

func envTrue(v string) bool {
	switch strings.ToUpper(v) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~"); ok && (rest == "" || rest[0] == '/') {
		if h, err := os.UserHomeDir(); err == nil {
			return h + rest
		}
	}
	return p
}

func (c *Client) orEnv() *Client {
	if c == nil {
		return FromEnv()
	}
	return c
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 60 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}}

// Ref is a parsed Hub reference.
type Ref struct {
	Repo     string // "org/name" (or a legacy "name")
	Revision string // "" when the reference names none (then "main")
}

// String is the reference as written: "org/name" or "org/name@revision".
func (r Ref) String() string {
	if r.Revision == "" {
		return r.Repo
	}
	return r.Repo + "@" + r.Revision
}

// Rev is the revision to resolve: the one named, or "main".
func (r Ref) Rev() string {
	if r.Revision == "" {
		return DefaultRevision
	}
	return r.Revision
}

// repoIDPattern is huggingface_hub's validate_repo_id rule.
var repoIDPattern = regexp.MustCompile(`^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$`)

var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ParseRef parses "org/name" or "org/name@revision" (a branch, tag or
// commit). It accepts what huggingface_hub's validate_repo_id accepts: at
// most 96 characters of letters, digits, '-', '_' and '.', one optional
// '/', no "--" or "..", starting and ending with a letter or digit.
func ParseRef(s string) (Ref, error) {
	repo, rev, hasRev := strings.Cut(s, "@")
	switch {
	case repo == "" || len(repo) > 96 || !repoIDPattern.MatchString(repo):
		return Ref{}, fmt.Errorf("%q is not a Hugging Face Hub id (org/name or org/name@revision)", s)
	case strings.Contains(repo, "--") || strings.Contains(repo, ".."):
		return Ref{}, fmt.Errorf("%q is not a Hugging Face Hub id: it may not contain \"--\" or \"..\"", s)
	case hasRev && (rev == "" || strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") || strings.ContainsAny(rev, "\\\x00")):
		return Ref{}, fmt.Errorf("%q: bad revision %q (a branch, tag or commit)", s, rev)
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

// IsRef reports whether s parses as a Hub reference.
func IsRef(s string) bool { _, err := ParseRef(s); return err == nil }

// Kind says which files a reference needs.
type Kind int

const (
	// Model: config.json, the weights (model.safetensors, a safetensors
	// shard index and its shards, or their pytorch_model.bin forms) and
	// the tokenizer files present.
	Model Kind = iota
	// Adapter: adapter_config.json, adapter_model.safetensors (or
	// adapter_model.bin) and the tokenizer files present.
	Adapter
	// Tokenizer: tokenizer.json and the other tokenizer files present.
	Tokenizer
)

func (k Kind) String() string {
	switch k {
	case Model:
		return "model"
	case Adapter:
		return "adapter"
	case Tokenizer:
		return "tokenizer"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// TokenizerFiles are the tokenizer files a model directory may hold, as
// AutoTokenizer.save_pretrained writes them.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"vocab.txt", "sentencepiece.bpe.model", "added_tokens.json",
}

// Resolved is where a reference was found.
type Resolved struct {
	// Dir is the local directory holding the files (for a local path
	// given as a file, the file itself).
	Dir string
	// Source is where the files come from, as provenance records it: the
	// Hub reference as given ("org/name" or "org/name@revision"), or the
	// absolute path of a local directory.
	Source string
	// Repo, Revision and Commit describe a Hub reference ("" for a local
	// path).
	Repo, Revision, Commit string
}

// Resolve finds ref: a local path when one exists, else the Hub id in the
// cache, downloading the files kind needs that the cache lacks (unless
// Offline). A ref that neither exists nor parses as a Hub id is returned
// as a local path, for the caller's own "no such file" error.
func (c *Client) Resolve(ctx context.Context, ref string, kind Kind) (*Resolved, error) {
	if _, err := os.Stat(ref); err == nil {
		abs, err := filepath.Abs(ref)
		if err != nil {
			return nil, err
		}
		return &Resolved{Dir: ref, Source: abs}, nil
	}
	r, err := ParseRef(ref)
	if err != nil {
		// Not a Hub id: a local path that does not exist, which the
		// caller reports as it reports any missing file.
		abs, aerr := filepath.Abs(ref)
		if aerr != nil {
			abs = ref
		}
		return &Resolved{Dir: ref, Source: abs}, nil
	}
	c = c.orEnv()
	res, err := c.resolve(ctx, r, kind)
	if err != nil {
		// A mistyped local path parses as a Hub id too: say that it was
		// looked for on disk first.
		return nil, &notLocalError{ref: ref, err: err}
	}
	return res, nil
}

// notLocalError is the error of a reference that is no local path and
// failed as a Hub id.
type notLocalError struct {
	ref string
	err error
}

func (e *notLocalError) Error() string {
	return fmt.Sprintf("no local directory %s, and as a Hugging Face Hub id: %v", e.ref, e.err)
}

func (e *notLocalError) Unwrap() error { return e.err }

// Dir is Resolve's directory: ref itself when it exists on disk,
// otherwise the cached snapshot of the Hub id.
func (c *Client) Dir(ctx context.Context, ref string, kind Kind) (string, error) {
	res, err := c.Resolve(ctx, ref, kind)
	if err != nil {
		return "", err
	}
	return res.Dir, nil
}

// Provenance names where the files of dir come from: the Hub id when dir
// is a snapshot of the huggingface_hub cache
// (…/models--org--name/snapshots/<commit>), else dir's absolute path.
func Provenance(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dir
	}
	commit := filepath.Base(abs)
	snaps := filepath.Dir(abs)
	folder := filepath.Base(filepath.Dir(snaps))
	if filepath.Base(snaps) == "snapshots" && commitPattern.MatchString(commit) {
		if rest, ok := strings.CutPrefix(folder, "models--"); ok {
			if repo := strings.Replace(rest, "--", "/", 1); IsRef(repo) {
				return repo
			}
		}
	}
	return abs
}

// RepoFolder is the cache folder of a model repository:
// "models--org--name".
func RepoFolder(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

// ErrOffline is wrapped by the errors of a file that offline mode would
// have to download.
var ErrOffline = errors.New("not in the cache, and HF_HUB_OFFLINE=1 forbids downloads")
