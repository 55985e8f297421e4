package hub

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Errors the Hub answers with, matched with errors.Is on an *HTTPError.
var (
	// ErrRepoNotFound: no such repository, or a private one the token
	// cannot see (the Hub answers both alike).
	ErrRepoNotFound = errors.New("repository not found")
	// ErrRevisionNotFound: the repository has no such branch, tag or commit.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the revision has no such file.
	ErrEntryNotFound = errors.New("file not found")
	// ErrGated: the repository is gated and the token's account has not
	// been granted access (or no token was sent).
	ErrGated = errors.New("gated repository")
	// ErrUnauthorized: the token was refused.
	ErrUnauthorized = errors.New("invalid token")
	// ErrForbidden: any other 403.
	ErrForbidden = errors.New("forbidden")
)

// HTTPError is a refusal by the Hub, classified as huggingface_hub's
// hf_raise_for_status classifies it: by the X-Error-Code header first,
// then by status.
type HTTPError struct {
	Status  int
	Code    string // X-Error-Code
	Message string // X-Error-Message, or the start of the body
	URL     string
	Repo    string
	Kind    error // one of the Err* values above, or nil
	hint    string
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", e.Repo)
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	}
	fmt.Fprintf(&b, " (HTTP %d from %s", e.Status, e.URL)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	b.WriteString(")")
	if e.hint != "" {
		b.WriteString(": ")
		b.WriteString(e.hint)
	}
	return b.String()
}

// Is matches the kind of refusal (errors.Is(err, hub.ErrGated)).
func (e *HTTPError) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// hubError classifies a response of status ≥ 400.
func (c *Client) hubError(resp *http.Response, repo string) *HTTPError {
	e := &HTTPError{Status: resp.StatusCode, Code: resp.Header.Get("X-Error-Code"), Message: resp.Header.Get("X-Error-Message"), URL: resp.Request.URL.String(), Repo: repo}
	if e.Message == "" && resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		e.Message = strings.TrimSpace(string(body))
	}
	tokenHint := "set HF_TOKEN to a token of an account that can read it"
	if c.Token != "" {
		tokenHint = "check that HF_TOKEN belongs to an account that can read it"
	}
	switch {
	case e.Code == "RevisionNotFound":
		e.Kind, e.hint = ErrRevisionNotFound, "check the branch, tag or commit after '@'"
	case e.Code == "EntryNotFound":
		e.Kind = ErrEntryNotFound
	case e.Code == "GatedRepo":
		e.Kind = ErrGated
		e.hint = fmt.Sprintf("accept its conditions at %s/%s, then %s", c.Endpoint, repo, tokenHint)
	case e.Status == http.StatusUnauthorized && e.Message == "Invalid credentials in Authorization header":
		e.Kind, e.hint = ErrUnauthorized, "HF_TOKEN was refused: create a new token at "+c.Endpoint+"/settings/tokens"
	case e.Code == "RepoNotFound" || e.Status == http.StatusUnauthorized || (e.Status == http.StatusNotFound && e.Code == ""):
		e.Kind = ErrRepoNotFound
		e.hint = "check the id; if the repository is private or gated, " + tokenHint
	case e.Status == http.StatusForbidden:
		e.Kind, e.hint = ErrForbidden, tokenHint
	}
	return e
}
