package eval

import "sort"

// MissingDocs lists, sorted, the judged-relevant documents of q for
// which known is false (ids absent from the corpus): they count in
// recall and nDCG's ideal ranking but can never be retrieved.
func (q Qrels) MissingDocs(known func(id string) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, docs := range q {
		for id, rel := range docs {
			if rel > 0 && !seen[id] && !known(id) {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}
