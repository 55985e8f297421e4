package mine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadPoolFileText: a candidate pool with a byte-order mark and CRLF
// line ends reads; invalid UTF-8 and lone surrogate escapes (which Go's
// json reads as U+FFFD) are errors naming file, line and field.
func TestReadPoolFileText(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range []struct {
		name, data, want string // want after "<file>:"; "" = accepted
	}{
		{"BOM CRLF", "\xef\xbb\xbf{\"text\":\"a\"}\r\n{\"text\":\"b \\ud83d\\ude00\"}\r\n", ""},
		{"lone surrogate", `{"text":"a"}` + "\n" + `{"title":"\udbff","text":"b"}` + "\n", `2: field "title": byte 11: lone UTF-16 surrogate \udbff`},
		{"invalid UTF-8", "{\"text\":\"\xc3\"}\n", `1: field "text": byte 10: invalid UTF-8 (0xc3)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, string(rune('a'+i))+".jsonl")
			require.NoError(t, os.WriteFile(p, []byte(tc.data), 0o644))
			ids, passages, _, err := ReadPoolFile(p)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, []string{"0", "1"}, ids)
				assert.Equal(t, []string{"a", "b 😀"}, passages)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), p+":"+tc.want)
		})
	}
}
