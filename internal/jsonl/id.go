package jsonl

import (
	"encoding/json"
	"fmt"
)

// ID is a record id ("_id", "qid") that a file may write as a JSON string
// or as a bare number: BEIR's loaders take either, since Python's json
// keeps whatever the file has. A number becomes its literal text ("42",
// "1e3"), the form it has in the qrels TSV beside it.
type ID string

// UnmarshalJSON reads a string or a number; anything else is an error.
func (id *ID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = ID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or number id, got %s", b)
	}
	*id = ID(n.String())
	return nil
}
