package eval

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMissingDocs(t *testing.T) {
	q := Qrels{"q1": {"d1": 1, "d9": 2, "d0": 0}, "q2": {"d8": 1, "d9": 1, "d2": 1}}
	known := func(id string) bool { return id == "d1" || id == "d2" }
	assert.Equal(t, []string{"d8", "d9"}, q.MissingDocs(known), "judged relevant, absent, once each; d0 is not relevant")
	assert.Empty(t, Qrels{"q1": {"d1": 1}}.MissingDocs(known))
}
