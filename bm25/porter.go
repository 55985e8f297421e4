package bm25

// The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping",
// 1980) as in its author's reference implementation, which Lucene's
// PorterStemFilter also follows: words of one or two letters are left
// alone, step 2 maps "bli" to "ble" (not "abli" to "able") and "logi" to
// "log". Written from the published algorithm; no Go module found
// reproduces these departures, so the stemmer lives here.
//
// Stem expects a lowercase ASCII word; anything else is returned as is.

type porter struct {
	b []byte
	k int // end of the current word (inclusive)
	j int // end of the stem left by the last successful ends
}

// Stem returns the Porter stem of a lowercase ASCII word.
func Stem(word string) string {
	if len(word) <= 2 {
		return word
	}
	for i := 0; i < len(word); i++ {
		if c := word[i]; c < 'a' || c > 'z' {
			return word
		}
	}
	z := porter{b: []byte(word), k: len(word) - 1}
	z.step1ab()
	if z.k > 0 {
		z.step1c()
		z.step2()
		z.step3()
		z.step4()
		z.step5()
	}
	return string(z.b[:z.k+1])
}

// cons reports whether b[i] is a consonant.
func (z *porter) cons(i int) bool {
	switch z.b[i] {
	case 'a', 'e', 'i', 'o', 'u':
		return false
	case 'y':
		if i == 0 {
			return true
		}
		return !z.cons(i - 1)
	}
	return true
}

// m measures the number of consonant-vowel sequences in b[0..j]:
// [C](VC)^m[V].
func (z *porter) m() int {
	n, i := 0, 0
	for {
		if i > z.j {
			return n
		}
		if !z.cons(i) {
			break
		}
		i++
	}
	i++
	for {
		for {
			if i > z.j {
				return n
			}
			if z.cons(i) {
				break
			}
			i++
		}
		i++
		n++
		for {
			if i > z.j {
				return n
			}
			if !z.cons(i) {
				break
			}
			i++
		}
		i++
	}
}

// vowelInStem reports whether b[0..j] contains a vowel.
func (z *porter) vowelInStem() bool {
	for i := 0; i <= z.j; i++ {
		if !z.cons(i) {
			return true
		}
	}
	return false
}

// doublec reports whether b[j-1..j] is a double consonant.
func (z *porter) doublec(j int) bool {
	if j < 1 || z.b[j] != z.b[j-1] {
		return false
	}
	return z.cons(j)
}

// cvc reports whether b[i-2..i] is consonant-vowel-consonant with the
// last not w, x or y (used to restore an e: cav(e), lov(e), hop(e)).
func (z *porter) cvc(i int) bool {
	if i < 2 || !z.cons(i) || z.cons(i-1) || !z.cons(i-2) {
		return false
	}
	switch z.b[i] {
	case 'w', 'x', 'y':
		return false
	}
	return true
}

// ends reports whether b[0..k] ends with s, and if so sets j before it.
func (z *porter) ends(s string) bool {
	l := len(s)
	if l > z.k+1 {
		return false
	}
	if string(z.b[z.k-l+1:z.k+1]) != s {
		return false
	}
	z.j = z.k - l
	return true
}

// setto replaces b[j+1..k] with s.
func (z *porter) setto(s string) {
	z.b = append(z.b[:z.j+1], s...)
	z.k = z.j + len(s)
}

// r replaces the suffix with s when the stem's measure is positive.
func (z *porter) r(s string) {
	if z.m() > 0 {
		z.setto(s)
	}
}

// step1ab removes plurals and -ed or -ing.
func (z *porter) step1ab() {
	if z.b[z.k] == 's' {
		switch {
		case z.ends("sses"):
			z.k -= 2
		case z.ends("ies"):
			z.setto("i")
		case z.b[z.k-1] != 's':
			z.k--
		}
	}
	if z.ends("eed") {
		if z.m() > 0 {
			z.k--
		}
	} else if (z.ends("ed") || z.ends("ing")) && z.vowelInStem() {
		z.k = z.j
		switch {
		case z.ends("at"):
			z.setto("ate")
		case z.ends("bl"):
			z.setto("ble")
		case z.ends("iz"):
			z.setto("ize")
		case z.doublec(z.k):
			z.k--
			switch z.b[z.k] {
			case 'l', 's', 'z':
				z.k++
			}
		case z.m() == 1 && z.cvc(z.k):
			z.setto("e")
		}
	}
}

// step1c turns a terminal y into i when there is another vowel.
func (z *porter) step1c() {
	if z.ends("y") && z.vowelInStem() {
		z.b[z.k] = 'i'
	}
}

// rules tries suffixes in order; the first that matches is replaced (if
// the measure allows) and ends the step.
func (z *porter) rules(pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		if z.ends(pairs[i]) {
			z.r(pairs[i+1])
			return
		}
	}
}

// step2 maps double suffixes to single ones (-ization to -ize, ...).
func (z *porter) step2() {
	switch z.b[z.k-1] {
	case 'a':
		z.rules("ational", "ate", "tional", "tion")
	case 'c':
		z.rules("enci", "ence", "anci", "ance")
	case 'e':
		z.rules("izer", "ize")
	case 'l':
		z.rules("bli", "ble", "alli", "al", "entli", "ent", "eli", "e", "ousli", "ous")
	case 'o':
		z.rules("ization", "ize", "ation", "ate", "ator", "ate")
	case 's':
		z.rules("alism", "al", "iveness", "ive", "fulness", "ful", "ousness", "ous")
	case 't':
		z.rules("aliti", "al", "iviti", "ive", "biliti", "ble")
	case 'g':
		z.rules("logi", "log")
	}
}

// step3 handles -ic-, -full, -ness etc.
func (z *porter) step3() {
	switch z.b[z.k] {
	case 'e':
		z.rules("icate", "ic", "ative", "", "alize", "al")
	case 'i':
		z.rules("iciti", "ic")
	case 'l':
		z.rules("ical", "ic", "ful", "")
	case 's':
		z.rules("ness", "")
	}
}

// step4 removes -ant, -ence etc. in context <c>vcvc<v>.
func (z *porter) step4() {
	var suffixes []string
	switch z.b[z.k-1] {
	case 'a':
		suffixes = []string{"al"}
	case 'c':
		suffixes = []string{"ance", "ence"}
	case 'e':
		suffixes = []string{"er"}
	case 'i':
		suffixes = []string{"ic"}
	case 'l':
		suffixes = []string{"able", "ible"}
	case 'n':
		suffixes = []string{"ant", "ement", "ment", "ent"}
	case 'o':
		if z.ends("ion") && z.j >= 0 && (z.b[z.j] == 's' || z.b[z.j] == 't') {
			break
		}
		suffixes = []string{"ou"}
	case 's':
		suffixes = []string{"ism"}
	case 't':
		suffixes = []string{"ate", "iti"}
	case 'u':
		suffixes = []string{"ous"}
	case 'v':
		suffixes = []string{"ive"}
	case 'z':
		suffixes = []string{"ize"}
	default:
		return
	}
	if suffixes != nil {
		found := false
		for _, s := range suffixes {
			if z.ends(s) {
				found = true
				break
			}
		}
		if !found {
			return
		}
	}
	if z.m() > 1 {
		z.k = z.j
	}
}

// step5 removes a final -e when the measure is > 1 (or 1 and not cvc),
// and -ll to -l when the measure is > 1.
func (z *porter) step5() {
	z.j = z.k
	if z.b[z.k] == 'e' {
		a := z.m()
		if a > 1 || a == 1 && !z.cvc(z.k-1) {
			z.k--
		}
	}
	if z.b[z.k] == 'l' && z.doublec(z.k) && z.m() > 1 {
		z.k--
	}
}
