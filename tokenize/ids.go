package tokenize

// EncodeIDs encodes a pair given as token ids without special tokens (as
// Tokenize returns them): the pair is cut as tr says, from the end of
// each sequence or, with left, from its start (Hugging Face's
// truncation_side="left"), and the special tokens are added. Tokenizing
// the texts in full and then encoding their ids gives EncodePair's result
// whenever the pair fits, and tr.FullLengths' cut when it does not.
func (t *Tokenizer) EncodeIDs(a, b []int32, tr Truncation, left bool) (Encoding, error) {
	if err := t.check(tr); err != nil {
		return Encoding{}, err
	}
	ca, cb, err := t.truncate(a, b, tr)
	if err != nil {
		return Encoding{}, err
	}
	if left {
		ca, cb = a[len(a)-len(ca):], b[len(b)-len(cb):]
	}
	return t.postProcess(ca, cb), nil
}
