// Package fakehub is an in-process Hugging Face Hub for tests: it serves
// the Hub's endpoints and headers on a loopback port and refuses where the
// Hub refuses.
package fakehub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server serves the Hub's endpoints the way huggingface.co does, on a
// loopback port:
//
//	GET  /api/models/{repo}/revision/{rev}   {"id", "sha", "siblings": [{"rfilename"}]}
//	HEAD /{repo}/resolve/{rev}/{file}        small files: 200, ETag = git blob sha1
//	                                         LFS files: 302 to /cdn/<sha256>, X-Linked-Etag, X-Linked-Size
//	GET  /{repo}/resolve/{rev}/{file}        the same, with the body for small files
//	GET  /cdn/<sha256>                       the LFS object, with Range support
//
// every answer carrying X-Repo-Commit, and refusals carrying X-Error-Code
// and X-Error-Message as the Hub sends them.
type Server struct {
	// URL is the endpoint (HF_ENDPOINT).
	URL string
	srv *httptest.Server
	mu  sync.Mutex
	// Repos holds the repositories; change it only under Lock.
	repos map[string]*Repo
	// Granted is the token that may read gated repositories; any other
	// token except "reader" (a valid account without access) is refused
	// as invalid credentials.
	Granted string
	cut     map[string]int  // LFS objects whose next GET stops after this many bytes
	corrupt map[string]bool // LFS objects served with a flipped byte
	log     []string        // "METHOD path [range]"
}

// Repo is one model repository.
type Repo struct {
	Refs    map[string]string            // branch or tag -> commit
	Commits map[string]map[string][]byte // commit -> file -> content
	Gated   bool
}

// New starts a Hub on 127.0.0.1, closed when the test ends.
func New(t testing.TB) *Server {
	h := Start()
	t.Cleanup(h.srv.Close)
	return h
}

// Start starts a Hub on 127.0.0.1 for code without a testing.TB (an
// Example); the caller closes it.
func Start() *Server {
	h := &Server{repos: map[string]*Repo{}, cut: map[string]int{}, corrupt: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	h.URL = h.srv.URL
	return h
}

// Close stops the server: later requests fail to connect.
func (h *Server) Close() { h.srv.Close() }

// Repo returns a repository (nil when absent).
func (h *Server) Repo(name string) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[name]
}

// Cut makes the next download of the LFS object with this sha256 stop
// after n bytes, the connection dropped.
func (h *Server) Cut(sum string, n int) { h.mu.Lock(); h.cut[sum] = n; h.mu.Unlock() }

// Corrupt serves the LFS object with this sha256 with one byte flipped.
func (h *Server) Corrupt(sum string, on bool) { h.mu.Lock(); h.corrupt[sum] = on; h.mu.Unlock() }

// AddDir adds a commit holding every file of dir (not recursive).
func (h *Server) AddDir(t testing.TB, repo, branch, commit, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	h.Add(repo, branch, commit, files)
}

// Add creates or extends a repository with one commit (the given 40-hex
// id) that branch points to.
func (h *Server) Add(repo, branch, commit string, files map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[repo]
	if r == nil {
		r = &Repo{Refs: map[string]string{}, Commits: map[string]map[string][]byte{}}
		h.repos[repo] = r
	}
	r.Commits[commit] = files
	r.Refs[branch] = commit
}

// IsLFS reports whether the Hub stores a file in LFS (weights, sentencepiece models).
func IsLFS(name string) bool {
	return strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin") || strings.HasSuffix(name, ".model")
}

// SHA256Hex is an LFS object id.
func SHA256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// GitSHA1 is the ETag of a small file: its git blob id.
func GitSHA1(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Requests lists the requests so far that start with prefix, as
// "METHOD path" plus " bytes=N-" for a Range request.
func (h *Server) Requests(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range h.log {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func refuse(w http.ResponseWriter, status int, code, msg string, commit string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	if commit != "" {
		w.Header().Set("X-Repo-Commit", commit)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (h *Server) serve(w http.ResponseWriter, req *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	entry := req.Method + " " + req.URL.EscapedPath()
	if rg := req.Header.Get("Range"); rg != "" {
		entry += " " + rg
	}
	h.log = append(h.log, entry)
	p := req.URL.Path
	auth := req.Header.Get("Authorization")
	if auth != "" && auth != "Bearer "+h.Granted && auth != "Bearer reader" {
		refuse(w, 401, "", "Invalid credentials in Authorization header", "")
		return
	}
	if obj, ok := strings.CutPrefix(p, "/cdn/"); ok {
		h.serveObject(w, req, obj)
		return
	}
	var repoName, rev, file string
	api := false
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok {
		i := strings.Index(rest, "/revision/")
		if i < 0 {
			refuse(w, 404, "", "Not Found", "")
			return
		}
		repoName, rev, api = rest[:i], rest[i+len("/revision/"):], true
	} else {
		i := strings.Index(p, "/resolve/")
		if i < 0 {
			refuse(w, 404, "", "Not Found", "")
			return
		}
		repoName = strings.TrimPrefix(p[:i], "/")
		rev, file, _ = strings.Cut(p[i+len("/resolve/"):], "/")
	}
	repo := h.repos[repoName]
	if repo == nil {
		// Without a token the Hub answers 401 for a repository it will
		// not show, with a token 404.
		status := 404
		if auth == "" {
			status = 401
		}
		refuse(w, status, "RepoNotFound", "Repository not found", "")
		return
	}
	commit, ok := repo.Refs[rev]
	if !ok {
		if _, isCommit := repo.Commits[rev]; isCommit {
			commit = rev
		} else {
			refuse(w, 404, "RevisionNotFound", "Invalid rev id: "+rev, "")
			return
		}
	}
	files := repo.Commits[commit]
	if api {
		var sib []map[string]string
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			sib = append(sib, map[string]string{"rfilename": n})
		}
		gated := any(false)
		if repo.Gated {
			gated = "manual"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": repoName, "sha": commit, "siblings": sib, "gated": gated, "private": false})
		return
	}
	if repo.Gated && auth != "Bearer "+h.Granted {
		status := 403
		if auth == "" {
			status = 401
		}
		refuse(w, status, "GatedRepo", "Access to model "+repoName+" is restricted and you are not in the authorized list. Visit https://huggingface.co/"+repoName+" to ask for access.", commit)
		return
	}
	data, ok := files[file]
	if !ok {
		refuse(w, 404, "EntryNotFound", file+" does not exist on \""+rev+"\"", commit)
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if IsLFS(file) {
		sum := SHA256Hex(data)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
		w.Header().Set("ETag", `W/"`+GitSHA1([]byte(sum))+`"`)
		w.Header().Set("Location", h.srv.URL+"/cdn/"+sum)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitSHA1(data)+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(200)
	if req.Method == http.MethodGet {
		w.Write(data)
	}
}

// serveObject serves an LFS object by sha256, honouring Range.
func (h *Server) serveObject(w http.ResponseWriter, req *http.Request, sum string) {
	var data []byte
	for _, r := range h.repos {
		for _, files := range r.Commits {
			for _, d := range files {
				if SHA256Hex(d) == sum {
					data = d
				}
			}
		}
	}
	if data == nil {
		w.WriteHeader(404)
		return
	}
	if h.corrupt[sum] {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	start := 0
	if rg := req.Header.Get("Range"); rg != "" {
		s, ok := strings.CutPrefix(rg, "bytes=")
		s, _, _ = strings.Cut(s, "-")
		n, err := strconv.Atoi(s)
		if !ok || err != nil || n >= len(data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	w.Header().Set("Accept-Ranges", "bytes")
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(200)
	}
	body := data[start:]
	if n, ok := h.cut[sum]; ok {
		delete(h.cut, sum)
		w.Write(body[:n])
		w.(http.Flusher).Flush()
		// Drop the connection mid-body, as a network failure would.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	w.Write(body)
}
