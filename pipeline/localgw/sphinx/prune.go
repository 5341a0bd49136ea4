package sphinx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
)

// Pruning: a trigram model's bigrams and trigrams cut to those that
// change its predictions most, by the weighted difference of Seymore and
// Rosenfeld (1996): an n-gram h w is worth
//
//	P(h w) * |log P(w|h) - log(backoff(h) * P(w|h'))|
//
// how far its explicit probability is from the estimate the model would
// back off to without it, weighted by how often the n-gram occurs (h' is
// h without its first word). The least worth are dropped, and the backoff
// of each context is computed anew from what it keeps, so that its
// probabilities still sum to one (as SRILM's pruning does). A bigram that
// a kept trigram hangs from is kept too (the reversed trie holds "u v w"
// under "v w"), and a trigram whose context "u v" is not kept goes (that
// bigram holds the context's backoff).
//
// Why: the library holds every n-gram in memory, and after the
// vocabulary cut (compact.go) the default model's 1.37 million bigrams
// and 1.56 million trigrams were 18 of a decoder's 38 MB. Pruned to
// Bigrams and Trigrams the file is 5.5 MB. Measured (BenchmarkWER, 40
// sentences, 2026-12-06), pruned / not: words wrong with a quiet room's
// noise, flite 4.2 % / 5.1 %, espeak-ng 34.1 % / 29.4 %; over digital
// silence flite 4.2 % / 5.1 %, espeak-ng 58.4 % / 56.1 %; a decoder's
// memory (BenchmarkMemory) 21 MB / 34 MB; decoding 12.5x / 11.6x real
// time. Other sizes tried (flite / espeak-ng, noise): 600k/300k 6.1 % /
// 34.6 %, 300k/150k 8.9 % / 34.6 %, 200k/500k 5.6 % / 35.1 %: trigrams
// are worth more than bigrams here.

// The pruned model's sizes: bigrams (more where a kept trigram needs its
// bigram) and trigrams.
const (
	Bigrams  = 250000
	Trigrams = 600000
)

// lnBase is the natural log of the base of the model's stored log
// probabilities: sphinxbase converts to its logmath's base, 1.0001 (the
// default model's unigrams sum to one in it), so P = e^(value*lnBase).
var lnBase = math.Log(1.0001)

// pruneBins is the histogram's resolution: scores are binned by their
// natural log from pruneLow to pruneHigh.
const (
	pruneBins = 4096
	pruneLow  = -80.0
	pruneHigh = 20.0
)

var errNotPrunable = errors.New("not a trigram model")

// trigramModel is what pruning reads of a trigram model: its header, the
// unigrams, the bigrams' words and codes (the trigrams' contexts are
// looked up there), and the quantizer's tables.
type trigramModel struct {
	m        *trieModel
	uni      []unigram
	biWord   []uint32
	biCode   []uint32 // probability code << 16 | backoff code
	biProb   []float32
	biBack   []float32
	triProb  []float32
	quantRaw []byte
	// ctx is each word's log probability as a context: its unigram's,
	// but for the sentence start, whose unigram is never predicted (-99
	// in ARPA files), which would make every n-gram after it worthless:
	// there the sentence end's (a sentence starts as often as one ends).
	ctx []float64
}

func readTrigramModel(src *os.File) (*trigramModel, error) {
	m, err := readTrie(src)
	if err != nil {
		return nil, err
	}
	if m.order != 3 {
		return nil, errNotPrunable
	}
	t := &trigramModel{m: m}
	if t.uni, err = m.readUnigrams(src); err != nil {
		return nil, err
	}
	words, err := m.readWords(src)
	if err != nil {
		return nil, err
	}
	t.ctx = make([]float64, m.counts[0])
	for i := range t.ctx {
		t.ctx[i] = float64(t.uni[i].logProb())
	}
	if s, e := slices.Index(words, "<s>"), slices.Index(words, "</s>"); s >= 0 && e >= 0 {
		t.ctx[s] = t.ctx[e]
	}
	t.quantRaw = make([]byte, quantSize(3))
	if _, err := src.ReadAt(t.quantRaw, m.quantOff); err != nil {
		return nil, fmt.Errorf("quantizer: %w", err)
	}
	table := func(i int) []float32 {
		v := make([]float32, 1<<16)
		b := t.quantRaw[4+i*quantTable:]
		for k := range v {
			v[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
		}
		return v
	}
	t.biProb, t.biBack, t.triProb = table(0), table(1), table(2)
	// The bigrams, whole: a trigram's context is any bigram.
	n := int(m.counts[1])
	t.biWord, t.biCode = make([]uint32, n), make([]uint32, n)
	l := &level{bits: m.bits(2)}
	l.r.r = bufio.NewReaderSize(io.NewSectionReader(src, m.levelOff[0], m.levelSize(2)), 64<<10)
	for i := range n {
		s := l.readSlot()
		t.biWord[i], t.biCode[i] = uint32(s.word), uint32(s.quant)
	}
	if l.r.err != nil {
		return nil, fmt.Errorf("bigrams: %w", l.r.err)
	}
	return t, nil
}

// bigram finds "u v": its slot, or -1.
func (t *trigramModel) bigram(u, v uint32) int {
	lo, hi := int(t.uni[v].next), int(t.uni[v+1].next)
	if lo > hi || hi > len(t.biWord) {
		return -1
	}
	if i, ok := slices.BinarySearch(t.biWord[lo:hi], u); ok {
		return lo + i
	}
	return -1
}

// worth is an n-gram's score, the natural log of the weighted difference
// (-Inf when the n-gram predicts exactly what its backoff would).
func worth(logJoint, logProb, logBackedOff float64) float64 {
	d := math.Abs(logProb - logBackedOff)
	if d == 0 {
		return math.Inf(-1)
	}
	return logJoint*lnBase + math.Log(d*lnBase)
}

// walk visits the model in file order: each unigram w (onUnigram), then
// its bigrams "v w" and under each its trigrams "u v w", with their
// scores (onBigram). Each order's array is read once, from start to end.
func (t *trigramModel) walk(src *os.File, onUnigram func(w uint32), onBigram func(j int, bigramWorth float64, tri []triEntry)) error {
	m := t.m
	l := &level{bits: m.bits(3)}
	l.r.r = bufio.NewReaderSize(io.NewSectionReader(src, m.levelOff[1], m.levelSize(3)), 64<<10)
	// The bigrams' next fields, read alongside.
	b := &level{bits: m.bits(2)}
	b.r.r = bufio.NewReaderSize(io.NewSectionReader(src, m.levelOff[0], m.levelSize(2)), 64<<10)
	b.ahead = b.readSlot()
	var tri []triEntry
	for w := range m.counts[0] {
		lo, hi := t.uni[w].next, t.uni[w+1].next
		if hi < lo || int(hi) > len(t.biWord) {
			return fmt.Errorf("unigram %d: a corrupt range", w)
		}
		if onUnigram != nil {
			onUnigram(w)
		}
		pw := float64(t.uni[w].logProb())
		for j := int(lo); j < int(hi); j++ {
			s, end := b.entry()
			if end < s.next {
				return fmt.Errorf("bigram %d: a corrupt range", j)
			}
			v := t.biWord[j]
			if int(v) >= len(t.uni)-1 {
				return fmt.Errorf("bigram %d: word %d out of range", j, v)
			}
			pwv := float64(t.biProb[t.biCode[j]>>16])
			pv := t.ctx[v]
			bw := worth(pv+pwv, pwv, float64(math.Float32frombits(t.uni[v].backoff))+pw)
			tri = tri[:0]
			for range end - s.next {
				ts := l.readSlot()
				u := uint32(ts.word)
				if int(u) >= len(t.uni)-1 {
					return fmt.Errorf("trigram: word %d out of range", u)
				}
				p := float64(t.triProb[ts.quant])
				// The context "u v": its probability and backoff.
				joint, bo := t.ctx[u]+pv, 0.0
				k := t.bigram(u, v)
				if k >= 0 {
					joint = t.ctx[u] + float64(t.biProb[t.biCode[k]>>16])
					bo = float64(t.biBack[t.biCode[k]&0xffff])
				}
				tri = append(tri, triEntry{word: ts.word, code: ts.quant, context: k, worth: worth(joint+p, p, bo+pwv)})
			}
			onBigram(j, bw, tri)
		}
	}
	if l.r.err != nil {
		return fmt.Errorf("trigrams: %w", l.r.err)
	}
	if b.r.err != nil {
		return fmt.Errorf("bigrams: %w", b.r.err)
	}
	return nil
}

// triEntry is a trigram as the walk reads it.
type triEntry struct {
	word, code uint64
	context    int // the slot of its context's bigram "u v", -1 when the model has none
	worth      float64
}

// histogram counts scores in pruneBins bins, the highest first (bin);
// keepFrom says where to cut.
type histogram [pruneBins + 1]int // the last bin: -Inf and below pruneLow

func (h *histogram) add(s float64) { h[bin(s)]++ }

func bin(s float64) int {
	switch {
	case !(s >= pruneLow): // -Inf, and NaN from a damaged model
		return pruneBins
	case s >= pruneHigh:
		return 0
	}
	return min(int((pruneHigh-s)/(pruneHigh-pruneLow)*pruneBins), pruneBins-1)
}

// keepFrom is the last bin kept so that at most n are: bins 0..keepFrom
// (high scores first); all of them when they are n or fewer.
func (h *histogram) keepFrom(n int) int {
	total := 0
	for i := range h {
		if total+h[i] > n {
			return i - 1
		}
		total += h[i]
	}
	return len(h) - 1
}

// pruneTrie writes to dst the trigram model of src with at most about
// bigrams bigrams (more when kept trigrams need their bigram) and
// trigrams trigrams, and the backoffs of the contexts that lost n-grams
// computed anew, the rest of the model unchanged. It returns the new
// n-gram counts, and errNotPrunable for a model of another order.
func pruneTrie(src *os.File, dst io.WriterAt, bigrams, trigrams int) ([]uint32, error) {
	t, err := readTrigramModel(src)
	if err != nil {
		return nil, err
	}
	m := t.m
	// Pass 1: the scores' spread, for the cuts.
	var h2, h3 histogram
	if err := t.walk(src, nil, func(_ int, bw float64, tri []triEntry) {
		h2.add(bw)
		for _, e := range tri {
			h3.add(e.worth)
		}
	}); err != nil {
		return nil, err
	}
	cut2, cut3 := h2.keepFrom(bigrams), h3.keepFrom(trigrams)
	scoreKept := func(e triEntry) bool { return bin(e.worth) <= cut3 }
	// Pass 2: the bigrams kept, for their score or for a trigram kept
	// under them.
	keepBi := make([]bool, len(t.biWord))
	if err := t.walk(src, nil, func(j int, bw float64, tri []triEntry) {
		keepBi[j] = bin(bw) <= cut2 || slices.ContainsFunc(tri, scoreKept)
	}); err != nil {
		return nil, err
	}
	// Pass 3: the trigrams kept (their context "u v" must be too: it
	// holds their backoff), and what the kept n-grams of each context
	// sum to, for its backoff: backoff(h) = (1 - sum of P(w|h) kept) /
	// (1 - sum of P(w|h') for the same w).
	type sums struct{ p, lower float64 }
	uniSums := make([]sums, m.counts[0])
	// Per kept bigram (a trigram's context), by its rank among the kept:
	// a slice of those, not of every bigram (a map cost 15 MB).
	rank := ranks(keepBi)
	biSums := make([]sums, rank(len(keepBi)))
	keepTri := func(e triEntry) bool { return scoreKept(e) && e.context >= 0 && keepBi[e.context] }
	out := &trieModel{order: 3, counts: []uint32{m.counts[0], 0, 0}}
	var w uint32
	if err := t.walk(src, func(u uint32) { w = u }, func(j int, _ float64, tri []triEntry) {
		if !keepBi[j] {
			return
		}
		out.counts[1]++
		v := t.biWord[j]
		pwv := float64(t.biProb[t.biCode[j]>>16])
		uniSums[v].p += prob(pwv)
		uniSums[v].lower += prob(float64(t.uni[w].logProb()))
		for _, e := range tri {
			if !keepTri(e) {
				continue
			}
			out.counts[2]++
			s := &biSums[rank(e.context)]
			s.p += prob(float64(t.triProb[e.code]))
			s.lower += prob(pwv)
		}
	}); err != nil {
		return nil, err
	}
	backoff := func(s sums, old float64) float64 {
		if s.p >= 1 || s.lower >= 1 {
			return old // rounding: leave it
		}
		return math.Log((1-s.p)/(1-s.lower)) / lnBase
	}
	encodeBackoff := backoffEncoder(t.biBack)
	out.layout()

	// Pass 4: the model written.
	section := func(off int64) *bufio.Writer {
		return bufio.NewWriterSize(&offsetWriter{w: dst, off: off}, 64<<10)
	}
	head := section(0)
	head.WriteString(trieMagic)
	head.WriteByte(3)
	for _, c := range out.counts {
		binary.Write(head, binary.LittleEndian, c)
	}
	head.Write(t.quantRaw) // the tables as they are; a new backoff takes the nearest value
	unis := section(out.uniOff)
	bi := &bitWriter{w: section(out.levelOff[0])}
	tw := &bitWriter{w: section(out.levelOff[1])}
	b2, b3 := out.bits(2), out.bits(3)
	var nBi, nTri uint64
	var e [12]byte
	err = t.walk(src, func(w uint32) {
		// A unigram's range starts where the bigrams written so far end.
		u := t.uni[w]
		bo := backoff(uniSums[w], float64(math.Float32frombits(u.backoff)))
		binary.LittleEndian.PutUint32(e[:], u.prob)
		binary.LittleEndian.PutUint32(e[4:], math.Float32bits(float32(bo)))
		binary.LittleEndian.PutUint32(e[8:], uint32(nBi))
		unis.Write(e[:])
	}, func(j int, _ float64, tri []triEntry) {
		if !keepBi[j] {
			return
		}
		code := t.biCode[j]
		s := biSums[rank(j)] // no trigram kept: zeros, a backoff of 1 (0 as a log)
		code = code&^0xffff | encodeBackoff(backoff(s, float64(t.biBack[code&0xffff])), code&0xffff)
		bi.write(uint64(t.biWord[j]), b2.word)
		bi.write(uint64(code), b2.quant)
		bi.write(nTri, b2.next)
		nBi++
		for _, e := range tri {
			if keepTri(e) {
				tw.write(e.word, b3.word)
				tw.write(e.code, b3.quant)
				nTri++
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if nBi != uint64(out.counts[1]) || nTri != uint64(out.counts[2]) {
		return nil, fmt.Errorf("prune: %d bigrams and %d trigrams written for %v counted", nBi, nTri, out.counts)
	}
	// The ends: a last unigram and a last bigram slot holding the end of
	// the next order's range (lm_trie.c writes these too).
	binary.LittleEndian.PutUint32(e[:], 0)
	binary.LittleEndian.PutUint32(e[4:], 0)
	binary.LittleEndian.PutUint32(e[8:], uint32(nBi))
	unis.Write(e[:])
	bi.write(0, b2.word+b2.quant)
	bi.write(nTri, b2.next)
	bi.pad(out.levelSize(2))
	tw.pad(out.levelSize(3))
	tail := section(out.wordsOff)
	if _, err := io.Copy(tail, io.NewSectionReader(src, m.wordsOff, math.MaxInt64-m.wordsOff)); err != nil {
		return nil, fmt.Errorf("prune: words: %w", err)
	}
	for _, w := range []*bufio.Writer{head, unis, bi.w, tw.w, tail} {
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	return out.counts, nil
}

// ranks returns rank(i): how many of keep[:i] are true, in constant time
// (a count per 64 entries).
func ranks(keep []bool) func(i int) int {
	blocks := make([]uint32, len(keep)/64+1)
	n := uint32(0)
	for i, k := range keep {
		if i%64 == 0 {
			blocks[i/64] = n
		}
		if k {
			n++
		}
	}
	if len(keep)%64 == 0 {
		blocks[len(keep)/64] = n
	}
	return func(i int) int {
		r := int(blocks[i/64])
		for _, k := range keep[i&^63 : i] {
			if k {
				r++
			}
		}
		return r
	}
}

// prob is a stored log probability as a probability.
func prob(logp float64) float64 { return math.Exp(logp * lnBase) }

// backoffEncoder returns the code of the table's value nearest to a
// backoff (the table's values are sorted: the bins' centres); with a
// table that is not sorted, a backoff keeps its old code.
func backoffEncoder(table []float32) func(bo float64, old uint32) uint32 {
	if !slices.IsSorted(table) {
		return func(_ float64, old uint32) uint32 { return old }
	}
	return func(bo float64, _ uint32) uint32 {
		i, _ := slices.BinarySearch(table, float32(bo))
		switch {
		case i == 0:
			return 0
		case i == len(table):
			return uint32(len(table) - 1)
		case bo-float64(table[i-1]) < float64(table[i])-bo:
			return uint32(i - 1)
		}
		return uint32(i)
	}
}
