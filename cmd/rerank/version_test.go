package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBuildVersion: a plain `go build` names its commit as make build's
// `git describe --always --dirty` does, `go install ...@v1.2.3` its module
// version, and a version set by the linker wins.
func TestBuildVersion(t *testing.T) {
	const rev = "d4d78580123456789abcdef0123456789abcdef0"
	info := func(mod string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: mod}, Settings: settings}, true
		}
	}
	for _, tc := range []struct {
		name string
		set  string
		read func() (*debug.BuildInfo, bool)
		want string
	}{
		{"linker flag wins", "v0.9.0-3-gabc", info("(devel)", debug.BuildSetting{Key: "vcs.revision", Value: rev}), "v0.9.0-3-gabc"},
		{"go build in a clean checkout", "dev", info("v0.0.0-20261203151249-d4d785801234", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), "d4d7858"},
		{"go build with local changes", "dev", info("v0.0.0-20261203151249-d4d785801234+dirty", debug.BuildSetting{Key: "vcs.revision", Value: rev}, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), "d4d7858-dirty"},
		{"go install at a version", "dev", info("v1.2.3"), "v1.2.3"},
		{"no vcs facts (-buildvcs=false, tests)", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", func() (*debug.BuildInfo, bool) { return nil, false }, "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, buildVersion(tc.set, tc.read))
		})
	}
}
