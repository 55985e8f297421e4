package jsonl

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{`{"_id": "d1"}`, "d1", false},
		{`{"_id": 42}`, "42", false},
		{`{"_id": 1e3}`, "1e3", false},
		{`{"_id": ""}`, "", false},
		{`{"_id": true}`, "", true},
		{`{"_id": null}`, "", false}, // null leaves a pointer nil: callers say "missing"
		{`{"_id": ["a"]}`, "", true},
		{`{"_id": {"a": 1}}`, "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var v struct {
				ID *ID `json:"_id"`
			}
			err := json.Unmarshal([]byte(tc.in), &v)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			if v.ID == nil {
				assert.Equal(t, "", tc.want)
				return
			}
			assert.Equal(t, tc.want, string(*v.ID))
		})
	}
}
