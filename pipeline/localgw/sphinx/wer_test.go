package sphinx_test

import (
	"strings"
	"testing"
	"unicode"
)

// words lower-cases s and splits it into words, joining the compounds the
// dictionary spells both ways ("good bye" -> "goodbye").
func words(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' })
	out := make([]string, 0, len(f))
	for i := 0; i < len(f); i++ {
		if i+1 < len(f) && f[i] == "good" && f[i+1] == "bye" {
			out = append(out, "goodbye")
			i++
			continue
		}
		out = append(out, f[i])
	}
	return out
}

// editDistance is the word-level Levenshtein distance: substitutions,
// deletions and insertions cost 1 each.
func editDistance(ref, hyp []string) int {
	prev, cur := make([]int, len(hyp)+1), make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			sub := prev[j-1]
			if ref[i-1] != hyp[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(hyp)]
}

// found counts the reference words present in the hypothesis (as a
// multiset: order and extra words do not matter).
func found(ref, hyp []string) int {
	have := map[string]int{}
	for _, w := range hyp {
		have[w]++
	}
	n := 0
	for _, w := range ref {
		if have[w] > 0 {
			have[w]--
			n++
		}
	}
	return n
}

// score accumulates word errors over utterances.
type score struct{ errors, found, refWords int }

func (s *score) add(ref, hyp string) {
	r, h := words(ref), words(hyp)
	s.errors += editDistance(r, h)
	s.found += found(r, h)
	s.refWords += len(r)
}

// wer is the word error rate in percent (above 100 when the hypothesis
// has many extra words).
func (s score) wer() float64 { return 100 * float64(s.errors) / float64(max(s.refWords, 1)) }

// recall is the share of reference words recognised, in percent.
func (s score) recall() float64 { return 100 * float64(s.found) / float64(max(s.refWords, 1)) }

func TestScore(t *testing.T) {
	for _, c := range []struct {
		ref, hyp      string
		errors, found int
	}{
		{"what time is it", "what time is it", 0, 4},
		{"what time is it", "", 4, 0},
		{"hello there", "hello their there", 1, 2},
		{"goodbye see you later", "good bye see you layer", 1, 3},
		{"set a timer for five minutes", "set the timer four five minutes", 2, 4},
		{"", "noise", 1, 0},
	} {
		r, h := words(c.ref), words(c.hyp)
		if e, f := editDistance(r, h), found(r, h); e != c.errors || f != c.found {
			t.Errorf("%q vs %q: %d errors, %d found; want %d, %d", c.ref, c.hyp, e, f, c.errors, c.found)
		}
	}
}
