package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in, kind string
		ordinal  int
		err      string
	}{
		{"", "cpu", 0, ""},
		{"cpu", "cpu", 0, ""},
		{"CUDA", "cuda", 0, ""},
		{"cuda:1", "cuda", 1, ""},
		{"gpu:2", "cuda", 2, ""},
		{"cpu:1", "", 0, "takes no number"},
		{"cuda:x", "", 0, "non-negative integer"},
		{"tpu", "", 0, "want cpu, cuda or cuda:N"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			kind, n, err := parseDevice(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.kind, kind)
			assert.Equal(t, tc.ordinal, n)
		})
	}
	_, _, err := openDevice("cpu", true)
	assert.ErrorContains(t, err, "--bf16 needs --device cuda")
	be, release, err := openDevice("cpu", false)
	require.NoError(t, err)
	release()
	assert.Equal(t, "cpu", be.Name())
}
