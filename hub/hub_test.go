package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/fakehub"
)

const (
	commitA = "1111111111111111111111111111111111111111"
	commitB = "2222222222222222222222222222222222222222"
)

// modelFiles is a small model repository: config, weights, tokenizer,
// and files rerank must not fetch.
func modelFiles(tag string) map[string][]byte {
	weights := make([]byte, 300<<10) // larger than one progress step
	for i := range weights {
		weights[i] = byte(i*7 + len(tag))
	}
	return map[string][]byte{
		"config.json":             []byte(`{"model_type": "bert", "tag": "` + tag + `"}`),
		"model.safetensors":       weights,
		"tokenizer.json":          []byte(`{"tok": "` + tag + `"}`),
		"tokenizer_config.json":   []byte(`{}`),
		"special_tokens_map.json": []byte(`{}`),
		"vocab.txt":               []byte("[PAD]\n[UNK]\n"),
		"README.md":               []byte("# card\n"),
		"onnx/model.onnx":         []byte("not needed"),
		"pytorch_model.bin":       []byte("older copy of the weights, not needed"),
		".gitattributes":          []byte("*.bin filter=lfs\n"),
	}
}

func newClient(h *fakehub.Server, t *testing.T) *Client {
	return &Client{Cache: filepath.Join(t.TempDir(), "hub"), Endpoint: h.URL}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

func TestDownloadThenOffline(t *testing.T) {
	h := fakehub.New(t)
	files := modelFiles("a")
	h.Add("org/model", "main", commitA, files)
	c := newClient(h, t)
	var events []Progress
	c.Progress = func(p Progress) { events = append(events, p) }

	res, err := c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	folder := filepath.Join(c.Cache, "models--org--model")
	assert.Equal(t, filepath.Join(folder, "snapshots", commitA), res.Dir)
	assert.Equal(t, "org/model", res.Source)
	assert.Equal(t, commitA, res.Commit)

	// huggingface_hub's layout: refs/main without newline, relative
	// symlinks into blobs named by ETag (sha256 for LFS, git sha1 otherwise).
	assert.Equal(t, commitA, read(t, filepath.Join(folder, "refs", "main")))
	for name, blob := range map[string]string{
		"model.safetensors": fakehub.SHA256Hex(files["model.safetensors"]),
		"config.json":       fakehub.GitSHA1(files["config.json"]),
		"tokenizer.json":    fakehub.GitSHA1(files["tokenizer.json"]),
	} {
		link, err := os.Readlink(filepath.Join(res.Dir, name))
		require.NoError(t, err, name)
		assert.Equal(t, "../../blobs/"+blob, link, name)
		assert.Equal(t, string(files[name]), read(t, filepath.Join(res.Dir, name)))
	}
	for _, skipped := range []string{"README.md", "onnx/model.onnx", "pytorch_model.bin", ".gitattributes"} {
		assert.NoFileExists(t, filepath.Join(res.Dir, skipped), "only the needed files are fetched")
	}
	assert.FileExists(t, filepath.Join(c.Cache, "CACHEDIR.TAG"))
	incompletes, _ := filepath.Glob(filepath.Join(folder, "blobs", "*.incomplete"))
	assert.Empty(t, incompletes)

	// Progress: the weights' file reported from 0 to its size.
	var weights []Progress
	for _, e := range events {
		if e.File == "model.safetensors" {
			weights = append(weights, e)
		}
	}
	require.GreaterOrEqual(t, len(weights), 3)
	assert.Equal(t, int64(0), weights[0].Done)
	assert.Equal(t, int64(len(files["model.safetensors"])), weights[len(weights)-1].Done)
	assert.Equal(t, int64(len(files["model.safetensors"])), weights[0].Total)

	// A second online run asks for the revision and downloads nothing.
	before := len(h.Requests("GET /cdn/"))
	_, err = c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Len(t, h.Requests("GET /cdn/"), before)
	assert.Len(t, h.Requests("HEAD "), 6, "one HEAD per needed file, first run only")

	// Fully offline, with the Hub gone.
	h.Close()
	n := len(h.Requests(""))
	off := *c
	off.Offline = true
	res2, err := off.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Equal(t, res.Dir, res2.Dir)
	assert.Len(t, h.Requests(""), n, "offline sends nothing")

	// Online but unreachable: the complete cached snapshot is used.
	res3, err := c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Equal(t, res.Dir, res3.Dir)
}

func TestResumeCutDownload(t *testing.T) {
	h := fakehub.New(t)
	files := modelFiles("cut")
	h.Add("org/model", "main", commitA, files)
	weights := files["model.safetensors"]
	sum := fakehub.SHA256Hex(weights)

	t.Run("cut mid-body, resumed in the same call", func(t *testing.T) {
		c := newClient(h, t)
		h.Cut(sum, 100000)
		res, err := c.Resolve(context.Background(), "org/model", Model)
		require.NoError(t, err)
		assert.Equal(t, string(weights), read(t, filepath.Join(res.Dir, "model.safetensors")))
		assert.Contains(t, h.Requests("GET /cdn/"+sum), "GET /cdn/"+sum+" bytes=100000-")
	})
	t.Run("an earlier run's .incomplete file", func(t *testing.T) {
		c := newClient(h, t)
		c.Attempts = 1
		h.Cut(sum, 12345)
		_, err := c.Resolve(context.Background(), "org/model", Model)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "run again to resume")
		incomplete := filepath.Join(c.Cache, "models--org--model", "blobs", sum+".incomplete")
		assert.Equal(t, 12345, len(read(t, incomplete)))
		assert.NoFileExists(t, filepath.Join(c.Cache, "models--org--model", "snapshots", commitA, "model.safetensors"))

		res, err := c.Resolve(context.Background(), "org/model", Model)
		require.NoError(t, err)
		assert.Equal(t, string(weights), read(t, filepath.Join(res.Dir, "model.safetensors")))
		assert.Contains(t, h.Requests("GET /cdn/"+sum), "GET /cdn/"+sum+" bytes=12345-")
		assert.NoFileExists(t, incomplete)
	})
}

func TestCorruptedBlobDetected(t *testing.T) {
	h := fakehub.New(t)
	files := modelFiles("bad")
	h.Add("org/model", "main", commitA, files)
	sum := fakehub.SHA256Hex(files["model.safetensors"])
	c := newClient(h, t)
	h.Corrupt(sum, true)
	_, err := c.Resolve(context.Background(), "org/model", Model)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sha256")
	assert.Contains(t, err.Error(), "corrupted")
	blobs := filepath.Join(c.Cache, "models--org--model", "blobs")
	assert.NoFileExists(t, filepath.Join(blobs, sum))
	assert.NoFileExists(t, filepath.Join(blobs, sum+".incomplete"))
	assert.NoFileExists(t, filepath.Join(c.Cache, "models--org--model", "snapshots", commitA, "model.safetensors"))

	// A corrupted partial file from an earlier run is detected after the
	// resume and downloaded again from the start.
	h.Corrupt(sum, false)
	bad := append([]byte(nil), files["model.safetensors"][:5000]...)
	bad[10] ^= 1
	require.NoError(t, os.WriteFile(filepath.Join(blobs, sum+".incomplete"), bad, 0o644))
	res, err := c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Equal(t, string(files["model.safetensors"]), read(t, filepath.Join(res.Dir, "model.safetensors")))
}

func TestRefusals(t *testing.T) {
	h := fakehub.New(t)
	h.Add("org/model", "main", commitA, modelFiles("a"))
	h.Add("org/gated", "main", commitA, modelFiles("g"))
	h.Repo("org/gated").Gated = true
	h.Granted = "granted-token"
	cases := []struct {
		name, ref, token string
		want             error
		says             []string
	}{
		{"gated, no token", "org/gated", "", ErrGated, []string{"HTTP 401", "accept its conditions at " + h.URL + "/org/gated", "set HF_TOKEN"}},
		{"gated, token not granted", "org/gated", "reader", ErrGated, []string{"HTTP 403", "not in the authorized list", "check that HF_TOKEN"}},
		{"missing repo, no token", "org/nothing", "", ErrRepoNotFound, []string{"HTTP 401", "Repository not found", "private or gated"}},
		{"missing repo, token", "org/nothing", "reader", ErrRepoNotFound, []string{"HTTP 404"}},
		{"missing revision", "org/model@v9", "", ErrRevisionNotFound, []string{"HTTP 404", "v9"}},
		{"bad token", "org/model", "wrong", ErrUnauthorized, []string{"HTTP 401", "HF_TOKEN was refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(h, t)
			c.Token = tc.token
			_, err := c.Resolve(context.Background(), tc.ref, Model)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			for _, s := range tc.says {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	t.Run("gated, granted", func(t *testing.T) {
		c := newClient(h, t)
		c.Token = "granted-token"
		_, err := c.Resolve(context.Background(), "org/gated", Model)
		require.NoError(t, err)
	})
	t.Run("listed file missing: 404 EntryNotFound, recorded in .no_exist", func(t *testing.T) {
		c := newClient(h, t)
		require.NoError(t, os.MkdirAll(c.Cache, 0o755))
		_, err := c.meta(context.Background(), "org/model", commitA, "adapter_config.json")
		require.ErrorIs(t, err, ErrEntryNotFound)
		assert.FileExists(t, filepath.Join(c.Cache, "models--org--model", ".no_exist", commitA, "adapter_config.json"))
	})
	t.Run("not an adapter repository", func(t *testing.T) {
		c := newClient(h, t)
		_, err := c.Resolve(context.Background(), "org/model", Adapter)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "has no adapter_config.json")
	})
}

func TestOfflineMissing(t *testing.T) {
	h := fakehub.New(t)
	files := modelFiles("a")
	h.Add("org/model", "main", commitA, files)
	c := newClient(h, t)
	c.Offline = true

	_, err := c.Resolve(context.Background(), "org/model", Model)
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "HF_HUB_OFFLINE")
	assert.Contains(t, err.Error(), "no refs/main")

	// The tokenizer is cached, the model's weights are not.
	on := *c
	on.Offline = false
	_, err = on.Resolve(context.Background(), "org/model", Tokenizer)
	require.NoError(t, err)
	_, err = c.Resolve(context.Background(), "org/model", Tokenizer)
	require.NoError(t, err)
	_, err = c.Resolve(context.Background(), "org/model", Model)
	require.ErrorIs(t, err, ErrOffline)
	assert.Contains(t, err.Error(), "config.json")
	assert.Empty(t, h.Requests("GET /cdn/"), "offline downloads nothing")
}

func TestRevisions(t *testing.T) {
	h := fakehub.New(t)
	h.Add("org/model", "main", commitA, modelFiles("old"))
	h.Add("org/model", "main", commitB, modelFiles("new"))
	h.Repo("org/model").Refs["v1"] = commitA
	c := newClient(h, t)
	folder := filepath.Join(c.Cache, "models--org--model")

	res, err := c.Resolve(context.Background(), "org/model@"+commitA, Model)
	require.NoError(t, err)
	assert.Equal(t, commitA, res.Commit)
	assert.Equal(t, "org/model@"+commitA, res.Source)
	assert.Contains(t, read(t, filepath.Join(res.Dir, "config.json")), `"old"`)
	assert.NoDirExists(t, filepath.Join(folder, "refs"), "a commit is not a ref")

	res, err = c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Equal(t, commitB, res.Commit)
	assert.Contains(t, read(t, filepath.Join(res.Dir, "config.json")), `"new"`)

	res, err = c.Resolve(context.Background(), "org/model@v1", Model)
	require.NoError(t, err)
	assert.Equal(t, commitA, res.Commit)
	assert.Equal(t, commitA, read(t, filepath.Join(folder, "refs", "v1")))

	// Offline, a pinned commit needs no ref.
	off := *c
	off.Offline = true
	res, err = off.Resolve(context.Background(), "org/model@"+commitA, Model)
	require.NoError(t, err)
	assert.Contains(t, read(t, filepath.Join(res.Dir, "config.json")), `"old"`)
}

// writePythonCache lays a model out as huggingface_hub's cache
// documentation describes (https://huggingface.co/docs/huggingface_hub/guides/manage-cache):
// blobs named by ETag, refs/main holding the commit, snapshot files as
// relative symlinks, here with a sharded safetensors index.
func writePythonCache(t *testing.T, cache string) string {
	folder := filepath.Join(cache, "models--BAAI--bge-reranker-base")
	files := map[string]string{
		"config.json":                      `{"model_type": "xlm-roberta"}`,
		"model.safetensors.index.json":     `{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`,
		"model-00001-of-00002.safetensors": "shard-1",
		"model-00002-of-00002.safetensors": "shard-2",
		"tokenizer.json":                   `{}`,
		"sentencepiece.bpe.model":          "spm",
	}
	snap := filepath.Join(folder, "snapshots", commitB)
	require.NoError(t, os.MkdirAll(snap, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(folder, "blobs"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(folder, "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(folder, "refs", "main"), []byte(commitB), 0o644))
	for name, body := range files {
		etag := fakehub.GitSHA1([]byte(body))
		if fakehub.IsLFS(name) {
			etag = fakehub.SHA256Hex([]byte(body))
		}
		require.NoError(t, os.WriteFile(filepath.Join(folder, "blobs", etag), []byte(body), 0o644))
		require.NoError(t, os.Symlink("../../blobs/"+etag, filepath.Join(snap, name)))
	}
	return snap
}

func TestPythonCacheReadWithoutDownload(t *testing.T) {
	h := fakehub.New(t) // knows nothing: any download would fail
	for _, offline := range []bool{true, false} {
		c := newClient(h, t)
		c.Offline = offline
		snap := writePythonCache(t, c.Cache)
		if !offline {
			// Online, the Hub is asked which commit main is; the files
			// come from the cache.
			h.Add("BAAI/bge-reranker-base", "main", commitB, map[string][]byte{
				"config.json": nil, "model.safetensors.index.json": nil, "model-00001-of-00002.safetensors": nil,
				"model-00002-of-00002.safetensors": nil, "tokenizer.json": nil, "sentencepiece.bpe.model": nil,
			})
		}
		res, err := c.Resolve(context.Background(), "BAAI/bge-reranker-base", Model)
		require.NoError(t, err, "offline=%v", offline)
		assert.Equal(t, snap, res.Dir)
		assert.Equal(t, "shard-2", read(t, filepath.Join(res.Dir, "model-00002-of-00002.safetensors")))
		assert.Empty(t, h.Requests("HEAD "), "no file metadata asked")
		assert.Empty(t, h.Requests("GET /cdn/"), "nothing downloaded")
		assert.Equal(t, "BAAI/bge-reranker-base", Provenance(res.Dir))
	}
}

func TestLocalPathFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "org", "model")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	require.NoError(t, os.Chdir(filepath.Dir(filepath.Dir(dir))))
	c := &Client{Cache: t.TempDir(), Endpoint: "http://127.0.0.1:1", Offline: true}
	res, err := c.Resolve(context.Background(), "org/model", Model)
	require.NoError(t, err)
	assert.Equal(t, "org/model", res.Dir)
	abs, _ := filepath.Abs("org/model")
	assert.Equal(t, abs, res.Source)
	assert.Equal(t, abs, Provenance("org/model"))

	res, err = c.Resolve(context.Background(), "./not/here", Model)
	require.NoError(t, err, "not an id: left to the caller")
	assert.Equal(t, "./not/here", res.Dir)
}

func TestParseRef(t *testing.T) {
	cases := []struct {
		in       string
		repo     string
		rev      string
		rejected bool
	}{
		{in: "BAAI/bge-reranker-v2-m3", repo: "BAAI/bge-reranker-v2-m3"},
		{in: "cross-encoder/ms-marco-MiniLM-L-6-v2@main", repo: "cross-encoder/ms-marco-MiniLM-L-6-v2", rev: "main"},
		{in: "org/name@" + commitA, repo: "org/name", rev: commitA},
		{in: "org/name@refs/pr/1", repo: "org/name", rev: "refs/pr/1"},
		{in: "bert-base-uncased", repo: "bert-base-uncased"},
		{in: "./models/x", rejected: true},
		{in: "/abs/path", rejected: true},
		{in: "a/b/c", rejected: true},
		{in: "org--x/name", rejected: true},
		{in: "org/na..me", rejected: true},
		{in: "org/name@", rejected: true},
		{in: "org/name@../x", rejected: true},
		{in: "org/name-", rejected: true},
		{in: "", rejected: true},
		{in: strings.Repeat("a", 97), rejected: true},
	}
	for _, tc := range cases {
		r, err := ParseRef(tc.in)
		if tc.rejected {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.repo, r.Repo, tc.in)
		assert.Equal(t, tc.rev, r.Revision, tc.in)
		assert.Equal(t, tc.in, r.String())
	}
}

func TestFromEnv(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	c := FromEnv()
	assert.Equal(t, filepath.Join(home, ".cache", "huggingface", "hub"), c.Cache)
	assert.Equal(t, DefaultEndpoint, c.Endpoint)
	assert.False(t, c.Offline)
	assert.Empty(t, c.Token)

	t.Setenv("HF_HOME", filepath.Join(home, "hf"))
	require.NoError(t, os.MkdirAll(filepath.Join(home, "hf"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "hf", "token"), []byte("hf_file\n"), 0o600))
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
	t.Setenv("HF_HUB_OFFLINE", "1")
	c = FromEnv()
	assert.Equal(t, filepath.Join(home, "hf", "hub"), c.Cache)
	assert.Equal(t, "http://127.0.0.1:9", c.Endpoint)
	assert.Equal(t, "hf_file", c.Token)
	assert.True(t, c.Offline)

	t.Setenv("HF_HUB_CACHE", "~/elsewhere")
	t.Setenv("HF_TOKEN", "hf_env")
	c = FromEnv()
	assert.Equal(t, filepath.Join(home, "elsewhere"), c.Cache)
	assert.Equal(t, "hf_env", c.Token)
}

func TestErrorsAreClassified(t *testing.T) {
	e := &HTTPError{Kind: ErrGated}
	assert.True(t, errors.Is(e, ErrGated))
	assert.False(t, errors.Is(e, ErrRepoNotFound))
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"BAAI/bge-reranker-v2-m3", "org/name@" + commitA, "org/name@refs/pr/1", "x", "./x", "a/b/c", "org/name@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		// An accepted id round-trips and names a single cache folder.
		if r.String() != s {
			t.Fatalf("ParseRef(%q).String() = %q", s, r.String())
		}
		folder := RepoFolder(r.Repo)
		if strings.ContainsAny(folder, `/\`) || strings.Contains(r.Repo, "..") {
			t.Fatalf("ParseRef(%q): cache folder %q escapes the cache", s, folder)
		}
	})
}

// TestMistypedLocalPath: a path that does not exist parses as a Hub id
// too; its error says it was looked for on disk first, offline, online
// and with the Hub unreachable, and keeps the cause for errors.Is.
func TestMistypedLocalPath(t *testing.T) {
	h := fakehub.New(t)
	for _, tc := range []struct {
		name    string
		ref     string
		offline bool
		is      error
	}{
		{"offline, org/name shape", "out/m3-lora", true, ErrOffline},
		{"offline, bare name", "m3-lora", true, ErrOffline},
		{"online, unknown repository", "out/m3-lora", false, ErrRepoNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(h, t)
			c.Offline = tc.offline
			_, err := c.Resolve(context.Background(), tc.ref, Model)
			require.ErrorIs(t, err, tc.is)
			assert.True(t, strings.HasPrefix(err.Error(), "no local directory "+tc.ref+", and as a Hugging Face Hub id: "), err.Error())
		})
	}
}
