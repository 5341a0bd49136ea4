package sphinx

import (
	"bufio"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ngrams is a whole trigram model in memory, for lookups: the bigrams
// (trigramModel) and the trigrams, each bigram's range of them.
type ngrams struct {
	*trigramModel
	biNext           []uint32
	triWord, triCode []uint32
}

func loadNgrams(t *testing.T, f *os.File) *ngrams {
	t.Helper()
	tm, err := readTrigramModel(f)
	if err != nil {
		t.Fatal(err)
	}
	m := tm.m
	g := &ngrams{trigramModel: tm}
	b := &level{bits: m.bits(2)}
	b.r.r = bufio.NewReader(io.NewSectionReader(f, m.levelOff[0], m.levelSize(2)))
	for range m.counts[1] + 1 {
		g.biNext = append(g.biNext, uint32(b.readSlot().next))
	}
	l := &level{bits: m.bits(3)}
	l.r.r = bufio.NewReader(io.NewSectionReader(f, m.levelOff[1], m.levelSize(3)))
	for range m.counts[2] {
		s := l.readSlot()
		g.triWord, g.triCode = append(g.triWord, uint32(s.word)), append(g.triCode, uint32(s.quant))
	}
	if b.r.err != nil || l.r.err != nil {
		t.Fatal(b.r.err, l.r.err)
	}
	return g
}

// trigram finds "u v w": its slot, or -1.
func (g *ngrams) trigram(u, v, w uint32) int {
	j := g.bigram(v, w)
	if j < 0 {
		return -1
	}
	lo, hi := int(g.biNext[j]), int(g.biNext[j+1])
	if i, ok := slices.BinarySearch(g.triWord[lo:hi], u); ok {
		return lo + i
	}
	return -1
}

// each calls fn for every n-gram, with its words (context first) and
// its probability code (the unigram's stored bits for order 1).
func (g *ngrams) each(fn func(words []uint32, code uint32)) {
	for w := range uint32(len(g.uni) - 1) {
		fn([]uint32{w}, g.uni[w].prob)
		for j := g.uni[w].next; j < g.uni[w+1].next; j++ {
			v := g.biWord[j]
			fn([]uint32{v, w}, g.biCode[j]>>16)
			for k := g.biNext[j]; k < g.biNext[j+1]; k++ {
				fn([]uint32{g.triWord[k], v, w}, g.triCode[k])
			}
		}
	}
}

// mass is the probability a unigram context v gives all words: its
// bigrams, and its backoff times the unigrams of the rest.
func (g *ngrams) mass(v uint32) float64 {
	explicit, covered := 0.0, 0.0
	for w := range uint32(len(g.uni) - 1) {
		if j := g.bigram(v, w); j >= 0 {
			explicit += prob(float64(g.biProb[g.biCode[j]>>16]))
			covered += prob(float64(g.uni[w].logProb()))
		}
	}
	all := 0.0
	for w := range len(g.uni) - 1 {
		all += prob(float64(g.uni[w].logProb()))
	}
	return explicit + prob(float64(math.Float32frombits(g.uni[v].backoff)))*(all-covered)
}

func pruneTo(t *testing.T, src *os.File, bigrams, trigrams int) *os.File {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "lm.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if _, err := pruneTrie(src, out, bigrams, trigrams); err != nil {
		t.Fatal(err)
	}
	return out
}

// With room for all, pruning keeps every n-gram and its probability.
func TestPruneKeepsEverything(t *testing.T) {
	src := defaultLM(t)
	want := loadNgrams(t, src)
	got := loadNgrams(t, pruneTo(t, src, math.MaxInt32, math.MaxInt32))
	var a, b [][]uint32
	want.each(func(w []uint32, c uint32) { a = append(a, append(w, c)) })
	got.each(func(w []uint32, c uint32) { b = append(b, append(w, c)) })
	// (Debian's model counts 6 bigrams no unigram's range reaches: they
	// are not n-grams of the model, and are not copied.)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatalf("the n-grams or their probabilities changed: %d n-grams, %d before", len(b), len(a))
	}
}

// Pruned, the model keeps at most about what it is asked, every n-gram it
// keeps as it was, the bigrams its trigrams need, and each context's
// probabilities still sum to one (Debian's model's sum to 0.9992 and up:
// no further from it).
func TestPruneCuts(t *testing.T) {
	src := defaultLM(t)
	want := loadNgrams(t, src)
	const bigrams, trigrams = 100000, 200000
	got := loadNgrams(t, pruneTo(t, src, bigrams, trigrams))
	c := got.m.counts
	if c[0] != want.m.counts[0] || c[2] > trigrams || c[2] < trigrams*9/10 || c[1] < bigrams*9/10 || c[1] > bigrams+c[2] {
		t.Fatalf("%v n-grams from %v, asked for %d bigrams and %d trigrams", c, want.m.counts, bigrams, trigrams)
	}
	got.each(func(w []uint32, code uint32) {
		switch len(w) {
		case 2:
			if j := want.bigram(w[0], w[1]); j < 0 || want.biCode[j]>>16 != code {
				t.Fatalf("bigram %v: not the source's", w)
			}
		case 3:
			if k := want.trigram(w[0], w[1], w[2]); k < 0 || want.triCode[k] != code {
				t.Fatalf("trigram %v: not the source's", w)
			}
			if got.bigram(w[0], w[1]) < 0 {
				t.Fatalf("trigram %v kept without its context's bigram", w)
			}
		}
	})
	// The contexts that lost most: every 50th word (a full sum is a pass
	// over all words per context).
	for v := uint32(0); v < c[0]; v += 50 {
		if a, b := got.mass(v), want.mass(v); math.Abs(a-1) > max(1e-4, math.Abs(b-1)) {
			t.Fatalf("word %d as a context: its probabilities sum to %.6f, %.6f before pruning", v, a, b)
		}
	}
}

// Other formats are not pruned; a damaged model is an error, never a
// panic.
func TestPruneRefuses(t *testing.T) {
	src := defaultLM(t)
	whole, err := os.ReadFile(src.Name())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		b    []byte
		is   error
	}{
		{"lm.arpa", []byte("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 hello\n\n\\end\\\n"), errNotTrie},
		{"truncated", whole[:len(whole)/2], nil},
		{"header only", whole[:40], nil},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		_, err = pruneTrie(f, discard{}, 1000, 1000)
		if err == nil || c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// Any score has a bin, a damaged model's NaN and infinities included.
func TestPruneBins(t *testing.T) {
	for _, s := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), -1e300, 1e300, pruneLow, pruneHigh, 0} {
		if b := bin(s); b < 0 || b > pruneBins {
			t.Errorf("score %v: bin %d", s, b)
		}
	}
	if bin(pruneHigh-1) >= bin(pruneLow+1) {
		t.Error("a higher score is not in an earlier bin")
	}
}
