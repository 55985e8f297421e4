// Package tokenize encodes (query, passage) pairs for cross-encoder
// rerankers exactly as Hugging Face tokenizers does, for the BERT pipeline
// (BertNormalizer, BertPreTokenizer, WordPiece) and the XLM-R pipeline
// (Precompiled and Replace normalizers, Metaspace, Unigram), with
// TemplateProcessing, BertProcessing or RobertaProcessing around the pair.
//
//	tok, err := tokenize.Load("path/to/model")        // or .../tokenizer.json
//	enc, err := tok.EncodePair(query, passage, tokenize.Truncation{
//		Strategy: tokenize.FlagEmbedding, QueryMaxLen: 32, PassageMaxLen: 128})
//	batch, err := tok.EncodeBatch(pairs, tokenize.BatchOptions{Truncation: tr, PadToMultipleOf: 8})
//	// batch.IDs, batch.TypeIDs, batch.Mask: row-major N*S int32
//
// # Relation to sugarme/tokenizer
//
// tokenizer.json is read through sugarme/tokenizer's Config schema, and the
// models implement sugarme's Model interface (Tokenizer.Model). sugarme's
// own components are not used: its loader builds them from fixed switch
// statements with no way to register replacements, and they differ from
// Hugging Face on many inputs (accents without NFD, ASCII-only whitespace,
// the charsmap, type ids, truncation), panic on some and call log.Fatal on
// others. The pipeline here is our own and never panics on any input.
//
// # Exactness
//
// The expected ids in testdata come from the official library (npm package
// tokenizers 0.23.2, see testdata/hf/gen.js). Details that matter:
//
//   - Added (special) tokens are split out of the raw text first, leftmost
//     longest, honouring lstrip, rstrip and single_word.
//
//   - BertNormalizer classifies characters with the tables of the Rust crate
//     unicode_categories 0.1.1 (Unicode 9 era; see unicode_tables.go), as HF
//     does, and resolves strip_accents: null to lowercase.
//
//   - Precompiled looks each grapheme cluster shorter than 6 bytes up whole
//     (the shortest matching key wins), else character by character.
//
//   - With truncation set, HF stops tokenizing a sequence after the
//     pre-tokenized word that brings it to max_length tokens (no early stop
//     for the first sequence under only_second); longest_first then compares
//     those capped lengths, which decides which sequence keeps the odd token.
//     Truncation.FullLengths gives the behaviour of tokenizers before 0.23
//     (Python wheels pinned below 0.23, older TEI builds), which compared the
//     full lengths.
//
//   - Added tokens with normalized=true are matched, in their normalized
//     form, in the normalized text of the stretches between the others.
//
// Not supported (Load fails, naming the field): BPE and WordLevel models,
// byte_fallback, and pre-tokenizers other than BertPreTokenizer and
// Metaspace. Only right truncation exists.
// Go's Unicode tables (15.0) may differ from Rust's for characters assigned
// after Unicode 15 (lowercasing, NFD).
package tokenize
