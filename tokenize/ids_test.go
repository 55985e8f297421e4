package tokenize

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncodeIDs: a pair that fits encodes as EncodePair does; a long one
// is cut longest_first, from the end or, with left, from the start.
func TestEncodeIDs(t *testing.T) {
	bert, xlmr := sharedTokenizers(t)
	for _, tok := range []*Tokenizer{bert, xlmr} {
		q, p := "what is a wing", "A wing generates lift in flight."
		tr := Truncation{Strategy: LongestFirst, MaxLen: 64}
		want, err := tok.EncodePair(q, p, tr)
		require.NoError(t, err)
		got, err := tok.EncodeIDs(tok.Tokenize(q), tok.Tokenize(p), tr, false)
		require.NoError(t, err)
		assert.Equal(t, want, got)

		long := strings.Repeat("lift drag thrust weight ", 40)
		b := tok.Tokenize(long)
		right, err := tok.EncodeIDs(tok.Tokenize(q), b, tr, false)
		require.NoError(t, err)
		left, err := tok.EncodeIDs(tok.Tokenize(q), b, tr, true)
		require.NoError(t, err)
		assert.Equal(t, 64, right.Len())
		assert.Equal(t, 64, left.Len())
		n := 64 - tok.SpecialTokens(true) - len(tok.Tokenize(q))
		sep := len(right.IDs) - n - 1 // the passage's first token in the encoding
		assert.Equal(t, b[:n], right.IDs[sep:sep+n])
		assert.Equal(t, b[len(b)-n:], left.IDs[sep:sep+n])
	}
}
