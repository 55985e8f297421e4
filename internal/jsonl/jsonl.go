// Package jsonl holds the checks every reader of JSON Lines text input
// (pairs, training data, BEIR files, candidates, request bodies) applies to
// a line before decoding it, so that text Go's encoding/json would quietly
// alter is an error naming where it is instead:
//
//   - bytes that are not UTF-8 (encoding/json turns each into U+FFFD;
//     Python's json, which FlagEmbedding and BEIR read with, refuses the
//     file);
//   - a \uD800–\uDFFF escape that is not half of a surrogate pair (a lone
//     surrogate is no character: encoding/json turns it into U+FFFD,
//     Python keeps it and Hugging Face tokenizers then fail on it, serde_json
//     and so text-embeddings-inference refuse it).
//
// TrimBOM drops the UTF-8 byte-order mark some Windows tools write at the
// start of a file.
package jsonl

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// BOM is the UTF-8 encoding of U+FEFF.
var BOM = []byte("\xef\xbb\xbf")

// TrimBOM returns b without a leading UTF-8 byte-order mark.
func TrimBOM(b []byte) []byte { return bytes.TrimPrefix(b, BOM) }

// TextError is text that a JSON line must not hold.
type TextError struct {
	// Offset is the 0-based byte offset in the line.
	Offset int
	// Field is the object key whose value holds it ("" outside any).
	Field string
	// Msg says what is wrong and what to do.
	Msg string
}

func (e *TextError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("field %q: byte %d: %s", e.Field, e.Offset+1, e.Msg)
	}
	return fmt.Sprintf("byte %d: %s", e.Offset+1, e.Msg)
}

// Check returns a *TextError for the first invalid UTF-8 byte or lone
// surrogate escape of line (one JSON value), or nil. It reads strings only
// as far as it must; malformed JSON is left to the decoder.
func Check(line []byte) error {
	if utf8.Valid(line) && bytes.IndexByte(line, '\\') < 0 {
		return nil
	}
	var key, last []byte // the latest object key; the latest string closed
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ':' && last != nil:
			key, last = last, nil
			i++
		case c == '"':
			start := i + 1
			j, err := scanString(line, start)
			if err != nil {
				err.Field = string(key)
				return err
			}
			last = line[start:j]
			i = j + 1
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(line[i:])
			if r == utf8.RuneError && n <= 1 {
				return &TextError{Offset: i, Field: string(key), Msg: invalidMsg(line[i])}
			}
			i += n
		default:
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				last = nil
			}
			i++
		}
	}
	return nil
}

// CheckLine is Check for line n of the file called name, its error
// prefixed "name:n: " as the readers report it (the *TextError wrapped).
func CheckLine(name string, n int, line []byte) error {
	if err := Check(line); err != nil {
		return fmt.Errorf("%s:%d: %w", name, n, err)
	}
	return nil
}

func invalidMsg(b byte) string {
	return fmt.Sprintf("invalid UTF-8 (0x%02x): save the file as UTF-8", b)
}

// scanString checks the JSON string whose contents start at line[i] and
// returns the offset of its closing quote (len(line) when unterminated).
func scanString(line []byte, i int) (int, *TextError) {
	for i < len(line) {
		c := line[i]
		switch {
		case c == '"':
			return i, nil
		case c == '\\':
			if i+1 < len(line) && line[i+1] == 'u' {
				u, ok := hex4(line, i+2)
				if !ok {
					i += 2
					continue
				}
				switch {
				case u >= 0xD800 && u < 0xDC00:
					if i+7 < len(line) && line[i+6] == '\\' && line[i+7] == 'u' {
						if lo, ok := hex4(line, i+8); ok && lo >= 0xDC00 && lo < 0xE000 {
							i += 12
							continue
						}
					}
					return 0, &TextError{Offset: i, Msg: fmt.Sprintf("lone UTF-16 surrogate \\u%04x (a high surrogate with no low one after it): not text; fix the program that wrote it", u)}
				case u >= 0xDC00 && u < 0xE000:
					return 0, &TextError{Offset: i, Msg: fmt.Sprintf("lone UTF-16 surrogate \\u%04x (a low surrogate with no high one before it): not text; fix the program that wrote it", u)}
				}
				i += 6
				continue
			}
			i += 2
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(line[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, &TextError{Offset: i, Msg: invalidMsg(c)}
			}
			i += n
		default:
			i++
		}
	}
	return len(line), nil
}

// hex4 reads the four hex digits at line[i:i+4].
func hex4(line []byte, i int) (rune, bool) {
	if i+4 > len(line) {
		return 0, false
	}
	var r rune
	for _, c := range line[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
