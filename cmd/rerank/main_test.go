package main

import (
	"os"
	"testing"
)

// TestMain keeps every test off the network: the Hub is a closed
// loopback port, offline mode is on and the cache is a fresh directory,
// unless a test points these elsewhere (a fake Hub) with t.Setenv.
func TestMain(m *testing.M) {
	cache, err := os.MkdirTemp("", "rerank-hub-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("HF_HUB_CACHE", cache)
	os.Setenv("HF_HOME", cache)
	os.Setenv("XDG_CACHE_HOME", cache) // train's encoding cache: not the user's
	os.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")
	os.Setenv("HF_HUB_OFFLINE", "1")
	os.Unsetenv("HF_TOKEN")
	code := m.Run()
	os.RemoveAll(cache)
	os.Exit(code)
}
