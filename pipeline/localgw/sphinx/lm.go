package sphinx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
)

// The library's binary n-gram format ("Trie Language Model", which
// sphinx_lm_convert writes and Debian's en-us.lm.bin is in), read and
// written here to cut a model down to a vocabulary. The library loads
// such a file whole into memory, with no mmap: the file's n-grams are
// the model's memory (25 MB of the default's 32), and the words are most
// of the search's (its lexicon tree, one entry per word).
//
// Layout (sphinxbase 5prealpha, lm_trie.c, ngram_model_trie.c, all
// little-endian):
//
//	"Trie Language Model", order (1 byte), counts[order] (uint32: n-grams
//	of each order, unigrams first)
//	quantizer: int32, then for each middle order 2^16 probabilities and
//	2^16 backoffs, and 2^16 probabilities for the highest order (float32)
//	unigrams: counts[0]+1 of {prob, backoff float32; next uint32}
//	one bit-packed array per order 2..N, of counts[n-1]+1 slots (the
//	last holds only the end of the next order's range) and 8 bytes of
//	slack: word (bits for counts[0]), for a middle order 32 bits of
//	quantized backoff (low 16) and probability, and the start of its
//	range in the next order (bits for that order's count); for the
//	highest order 16 bits of probability
//	word strings: int32 length, then the words, each ending in NUL
//
// The trie is reversed, as KenLM's: a unigram's range holds the bigrams
// that end in it, keyed by the word before, and so on. Bit fields are
// read least significant bit first. A word's id is its place in the
// strings, which are sorted; a range is sorted by word id.

const trieMagic = "Trie Language Model"

// quantTable is one quantizer table: 2^16 float32 values.
const quantTable = 1 << 16 * 4

// trieModel is a binary model's header and where its sections are.
type trieModel struct {
	order    int
	counts   []uint32
	quantOff int64 // the quantizer, int32 first
	uniOff   int64
	levelOff []int64 // orders 2..N
	wordsOff int64
}

// levelBits are the widths of an order's fields.
type levelBits struct {
	word, quant, next uint // next is 0 for the highest order
}

func (m *trieModel) bits(n int) levelBits {
	b := levelBits{word: requiredBits(m.counts[0])}
	if n < m.order {
		b.quant, b.next = 32, requiredBits(m.counts[n])
	} else {
		b.quant = 16
	}
	return b
}

func (b levelBits) total() uint { return b.word + b.quant + b.next }

// levelSize is the bytes of order n's array (lm_trie.c's base_size).
func (m *trieModel) levelSize(n int) int64 {
	return (int64(m.counts[n-1]+1)*int64(m.bits(n).total())+7)/8 + 8
}

func quantSize(order int) int64 { return 4 + int64(order-2)*2*quantTable + quantTable }

// requiredBits is the bits needed for values up to max (bitarr.c).
func requiredBits(max uint32) uint { return uint(bits.Len32(max)) }

// layout computes the sections' offsets of a model with this header.
func (m *trieModel) layout() {
	off := int64(len(trieMagic)) + 1 + 4*int64(m.order)
	m.quantOff = off
	off += quantSize(m.order)
	m.uniOff = off
	off += 12 * int64(m.counts[0]+1)
	m.levelOff = m.levelOff[:0]
	for n := 2; n <= m.order; n++ {
		m.levelOff = append(m.levelOff, off)
		off += m.levelSize(n)
	}
	m.wordsOff = off
}

var errNotTrie = errors.New("not a binary trie language model")

// readTrie reads a model's header. Models of one order (no n-grams to
// cut) are refused along with other formats.
func readTrie(f *os.File) (*trieModel, error) {
	head := make([]byte, len(trieMagic)+1)
	if _, err := f.ReadAt(head, 0); err != nil || string(head[:len(trieMagic)]) != trieMagic {
		return nil, errNotTrie
	}
	m := &trieModel{order: int(head[len(trieMagic)])}
	if m.order < 2 || m.order > 5 { // NGRAM_MAX_ORDER
		return nil, fmt.Errorf("%w: order %d", errNotTrie, m.order)
	}
	counts := make([]byte, 4*m.order)
	if _, err := f.ReadAt(counts, int64(len(head))); err != nil {
		return nil, err
	}
	for i := range m.order {
		m.counts = append(m.counts, binary.LittleEndian.Uint32(counts[4*i:]))
	}
	if m.counts[0] == 0 || m.counts[0] >= 1<<25 {
		return nil, fmt.Errorf("%w: %d words", errNotTrie, m.counts[0])
	}
	m.layout()
	return m, nil
}

// unigram is one entry of the unigram array, as stored.
type unigram struct{ prob, backoff, next uint32 }

func (m *trieModel) readUnigrams(f *os.File) ([]unigram, error) {
	b := make([]byte, 12*(m.counts[0]+1))
	if _, err := f.ReadAt(b, m.uniOff); err != nil {
		return nil, fmt.Errorf("unigrams: %w", err)
	}
	u := make([]unigram, m.counts[0]+1)
	for i := range u {
		e := b[12*i:]
		u[i] = unigram{binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[8:])}
	}
	return u, nil
}

// readWords reads the word strings: word i has id i.
func (m *trieModel) readWords(f *os.File) ([]string, error) {
	var k [4]byte
	if _, err := f.ReadAt(k[:], m.wordsOff); err != nil {
		return nil, fmt.Errorf("words: %w", err)
	}
	n := int64(int32(binary.LittleEndian.Uint32(k[:])))
	if n <= 0 || n > 1<<28 {
		return nil, fmt.Errorf("words: %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, m.wordsOff+4); err != nil {
		return nil, fmt.Errorf("words: %w", err)
	}
	words := make([]string, 0, m.counts[0])
	for len(b) > 0 && len(words) < int(m.counts[0]) {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		words = append(words, string(b[:i]))
		b = b[min(i+1, len(b)):]
	}
	if len(words) != int(m.counts[0]) {
		return nil, fmt.Errorf("words: %d strings for %d unigrams", len(words), m.counts[0])
	}
	return words, nil
}

// prob is a unigram's log probability, as stored.
func (u unigram) logProb() float32 { return math.Float32frombits(u.prob) }

// bitReader reads bit fields in order, least significant bit first.
type bitReader struct {
	r   *bufio.Reader
	acc uint64
	n   uint
	err error
}

func (b *bitReader) read(width uint) uint64 {
	for b.n < width {
		c, err := b.r.ReadByte()
		if err != nil {
			if b.err == nil {
				b.err = err
			}
			c = 0
		}
		b.acc |= uint64(c) << b.n
		b.n += 8
	}
	v := b.acc & (1<<width - 1)
	b.acc >>= width
	b.n -= width
	return v
}

// bitWriter writes bit fields in order, least significant bit first.
type bitWriter struct {
	w   *bufio.Writer
	acc uint64
	n   uint
	len int64 // bytes written
}

func (b *bitWriter) write(v uint64, width uint) {
	b.acc |= v << b.n
	b.n += width
	for b.n >= 8 {
		b.w.WriteByte(byte(b.acc))
		b.acc >>= 8
		b.n -= 8
		b.len++
	}
}

// pad ends the array: the last partial byte, then zeros up to size.
func (b *bitWriter) pad(size int64) {
	if b.n > 0 {
		b.write(0, 8-b.n)
	}
	for ; b.len < size; b.len++ {
		b.w.WriteByte(0)
	}
}

// slot is one entry of an order's array.
type slot struct {
	word, quant, next uint64
}

// level reads one order's array in order, one slot ahead: an entry's
// range in the next order ends where the following slot's begins.
type level struct {
	bits  levelBits
	r     bitReader
	ahead slot
}

func (l *level) readSlot() slot {
	s := slot{word: l.r.read(l.bits.word), quant: l.r.read(l.bits.quant)}
	if l.bits.next > 0 {
		s.next = l.r.read(l.bits.next)
	}
	return s
}

// entry returns the next entry and the end of its range in the next order.
func (l *level) entry() (s slot, end uint64) {
	s = l.ahead
	l.ahead = l.readSlot()
	return s, l.ahead.next
}

// restrictTrie writes to dst the model of src cut down to the words keep
// says (by id): the n-grams made only of those words, with their
// probabilities and backoffs unchanged, so that a sentence of kept words
// scores as in src. It reads and writes in one pass each, holding the
// unigrams and a few buffers; it returns the new n-gram counts.
func restrictTrie(src *os.File, dst io.WriterAt, keep []bool) ([]uint32, error) {
	m, err := readTrie(src)
	if err != nil {
		return nil, err
	}
	if len(keep) != int(m.counts[0]) {
		return nil, fmt.Errorf("restrict: %d words to choose from, the model has %d", len(keep), m.counts[0])
	}
	uni, err := m.readUnigrams(src)
	if err != nil {
		return nil, err
	}
	words, err := m.readWords(src)
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(keep)) // new ids, in the same order
	var kept uint32
	for i, k := range keep {
		ids[i] = uint64(kept)
		if k {
			kept++
		}
	}
	if kept == 0 {
		return nil, errors.New("restrict: no word kept")
	}
	out := &trieModel{order: m.order, counts: make([]uint32, m.order)}
	out.counts[0] = kept
	// Pass 1 counts what is kept of each order, pass 2 writes it.
	if err := m.walk(src, uni, keep, func(n int, _ slot, _ uint64) {
		if n > 1 {
			out.counts[n-1]++
		}
	}); err != nil {
		return nil, err
	}
	out.layout()

	section := func(off int64) *bufio.Writer {
		return bufio.NewWriterSize(&offsetWriter{w: dst, off: off}, 64<<10)
	}
	head := section(0)
	head.WriteString(trieMagic)
	head.WriteByte(byte(out.order))
	for _, c := range out.counts {
		binary.Write(head, binary.LittleEndian, c)
	}
	// The quantizer's tables are kept: the codes are copied as they are.
	if _, err := io.Copy(head, io.NewSectionReader(src, m.quantOff, quantSize(m.order))); err != nil {
		return nil, fmt.Errorf("restrict: quantizer: %w", err)
	}
	unis := section(out.uniOff)
	arrays := make([]*bitWriter, out.order-1)
	for n := 2; n <= out.order; n++ {
		arrays[n-2] = &bitWriter{w: section(out.levelOff[n-2])}
	}
	written := make([]uint64, out.order+1) // entries written per order
	var e [12]byte
	err = m.walk(src, uni, keep, func(n int, s slot, oldWord uint64) {
		if n == 1 {
			u := uni[oldWord]
			binary.LittleEndian.PutUint32(e[:], u.prob)
			binary.LittleEndian.PutUint32(e[4:], u.backoff)
			binary.LittleEndian.PutUint32(e[8:], uint32(written[2]))
			unis.Write(e[:])
			written[1]++
			return
		}
		b := out.bits(n)
		w := arrays[n-2]
		w.write(ids[s.word], b.word)
		w.write(s.quant, b.quant)
		if b.next > 0 {
			w.write(written[n+1], b.next)
		}
		written[n]++
	})
	if err != nil {
		return nil, err
	}
	// The ends: a last unigram and a last slot per middle order holding
	// the end of the next order's range (lm_trie.c writes these too).
	binary.LittleEndian.PutUint32(e[:], 0)
	binary.LittleEndian.PutUint32(e[4:], 0)
	binary.LittleEndian.PutUint32(e[8:], uint32(written[2]))
	unis.Write(e[:])
	for n := 2; n <= out.order; n++ {
		b, w := out.bits(n), arrays[n-2]
		if b.next > 0 {
			w.write(0, b.word+b.quant)
			w.write(written[n+1], b.next)
		}
		w.pad(out.levelSize(n))
	}
	tail := section(out.wordsOff)
	size := 0
	for i, w := range words {
		if keep[i] {
			size += len(w) + 1
		}
	}
	binary.Write(tail, binary.LittleEndian, int32(size))
	for i, w := range words {
		if keep[i] {
			tail.WriteString(w)
			tail.WriteByte(0)
		}
	}
	sections := []*bufio.Writer{head, unis, tail}
	for _, a := range arrays {
		sections = append(sections, a.w)
	}
	for _, w := range sections {
		if err := w.Flush(); err != nil {
			return nil, fmt.Errorf("restrict: %w", err)
		}
	}
	return out.counts, nil
}

// walk visits the kept entries of every order in the file's order: a
// unigram (n = 1, its old id), then the entries of its range, depth
// first. An entry is kept when its word is and the entry it hangs from
// is. Every array is read once, from start to end.
func (m *trieModel) walk(src *os.File, uni []unigram, keep []bool, visit func(n int, s slot, oldWord uint64)) error {
	levels := make([]*level, m.order-1)
	for n := 2; n <= m.order; n++ {
		l := &level{bits: m.bits(n)}
		l.r.r = bufio.NewReaderSize(io.NewSectionReader(src, m.levelOff[n-2], m.levelSize(n)), 64<<10)
		l.ahead = l.readSlot()
		levels[n-2] = l
	}
	var bad error
	// children visits count entries of order n hanging from a parent.
	var children func(n int, count uint64, parentKept bool)
	children = func(n int, count uint64, parentKept bool) {
		l := levels[n-2]
		for range count {
			s, end := l.entry()
			if s.word >= uint64(len(keep)) || end < s.next {
				bad = fmt.Errorf("order %d: a corrupt entry", n)
				return
			}
			k := parentKept && keep[s.word]
			if k {
				visit(n, s, s.word)
			}
			if n < m.order {
				children(n+1, end-s.next, k)
			}
			if bad != nil {
				return
			}
		}
	}
	for w := range m.counts[0] {
		lo, hi := uni[w].next, uni[w+1].next
		if hi < lo {
			return fmt.Errorf("unigram %d: a corrupt range", w)
		}
		if keep[w] {
			visit(1, slot{}, uint64(w))
		}
		children(2, uint64(hi-lo), keep[w])
		if bad != nil {
			return bad
		}
	}
	for _, l := range levels {
		if l.r.err != nil {
			return fmt.Errorf("n-grams: %w", l.r.err)
		}
	}
	return nil
}

// offsetWriter writes sequentially from off through WriteAt.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}
