package sphinx

import (
	"bytes"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// defaultLM opens Debian's model, failing when it is not installed (the
// tests are the proof that the cut works on it), except on macOS, where
// recognition is unavailable by design.
func defaultLM(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Open(DefaultLM)
	if err != nil {
		if runtime.GOOS == "darwin" {
			t.Skipf("macOS: no pocketsphinx 5prealpha model: %v", err)
		}
		t.Fatalf("%v: %s", err, installHint)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fingerprint hashes what walk visits with keep, word ids renumbered as
// restrictTrie does: equal fingerprints, equal n-grams.
func fingerprint(t *testing.T, f *os.File, keep func(n int) []bool) (uint64, []uint32) {
	t.Helper()
	m, err := readTrie(f)
	if err != nil {
		t.Fatal(err)
	}
	uni, err := m.readUnigrams(f)
	if err != nil {
		t.Fatal(err)
	}
	k := keep(int(m.counts[0]))
	ids := make([]uint64, len(k))
	var next uint64
	for i, kept := range k {
		ids[i] = next
		if kept {
			next++
		}
	}
	h := fnv.New64a()
	counts := make([]uint32, m.order)
	var b [8 * 4]byte
	err = m.walk(f, uni, k, func(n int, s slot, old uint64) {
		counts[n-1]++
		u := uint64(0)
		if n == 1 {
			u = uint64(uni[old].prob)<<32 | uint64(uni[old].backoff)
		}
		for i, v := range []uint64{uint64(n), ids[old], s.quant, u} {
			for j := range 8 {
				b[8*i+j] = byte(v >> (8 * j))
			}
		}
		h.Write(b[:])
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.Sum64(), counts
}

func all(n int) []bool {
	k := make([]bool, n)
	for i := range k {
		k[i] = true
	}
	return k
}

// some keeps a fixed third of the words.
func some(n int) []bool {
	k := make([]bool, n)
	for i := range k {
		k[i] = i%3 == 1 || i < 10
	}
	return k
}

func restrictTo(t *testing.T, src *os.File, keep []bool) *os.File {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "lm.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if _, err := restrictTrie(src, out, keep); err != nil {
		t.Fatal(err)
	}
	return out
}

// Cut to every word, the model has the same n-grams, probabilities and
// backoffs, and a second cut changes no byte.
func TestRestrictTrieKeepsEverything(t *testing.T) {
	src := defaultLM(t)
	want, wantCounts := fingerprint(t, src, all)
	out := restrictTo(t, src, all(int(wantCounts[0])))
	got, counts := fingerprint(t, out, all)
	if got != want || !slices.Equal(counts, wantCounts) {
		t.Fatalf("cut to all words: %v n-grams (fingerprint %x), want %v (%x)", counts, got, wantCounts, want)
	}
	again := restrictTo(t, out, all(int(counts[0])))
	a, _ := os.ReadFile(out.Name())
	b, _ := os.ReadFile(again.Name())
	if !bytes.Equal(a, b) {
		t.Fatalf("a second cut to all words changed the file: %d bytes, then %d", len(a), len(b))
	}
}

// Cut to some words, the model has exactly the n-grams of the source made
// of those words, unchanged, and their strings.
func TestRestrictTrieKeepsTheWordsNGrams(t *testing.T) {
	src := defaultLM(t)
	want, wantCounts := fingerprint(t, src, some)
	m, _ := readTrie(src)
	out := restrictTo(t, src, some(int(m.counts[0])))
	got, counts := fingerprint(t, out, all)
	if got != want || !slices.Equal(counts, wantCounts) {
		t.Fatalf("cut: %v n-grams (fingerprint %x), want %v (%x)", counts, got, wantCounts, want)
	}
	srcWords, _ := m.readWords(src)
	om, err := readTrie(out)
	if err != nil {
		t.Fatal(err)
	}
	words, err := om.readWords(out)
	if err != nil {
		t.Fatal(err)
	}
	k := some(len(srcWords))
	var kept []string
	for i, w := range srcWords {
		if k[i] {
			kept = append(kept, w)
		}
	}
	if len(words) != len(kept) || words[0] != kept[0] || words[len(words)-1] != kept[len(kept)-1] {
		t.Fatalf("%d words from %q to %q, want %d from %q to %q", len(words), words[0], words[len(words)-1], len(kept), kept[0], kept[len(kept)-1])
	}
	if fi, _ := out.Stat(); fi.Size() >= 27_000_000/2 {
		t.Errorf("a third of the words in %d bytes: the cut does not shrink the file", fi.Size())
	}
}

// Other formats are not cut; a damaged model is an error, never a panic.
func TestRestrictTrieRefuses(t *testing.T) {
	src := defaultLM(t)
	dir := t.TempDir()
	write := func(name string, b []byte) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	whole, err := os.ReadFile(src.Name())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := readTrie(src)
	badRange := append([]byte{}, whole...) // the first unigram's range ends before it begins
	copy(badRange[m.uniOff+8:], []byte{0xff, 0xff, 0xff, 0x7f})
	arpa := write("lm.arpa", []byte("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 hello\n\n\\end\\\n"))
	if _, err := restrictTrie(arpa, discard{}, nil); !errors.Is(err, errNotTrie) {
		t.Errorf("ARPA text: %v, want errNotTrie", err)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"truncated", whole[:len(whole)/2]},
		{"header only", whole[:40]},
		{"bad ranges", badRange},
	} {
		f := write(c.name, c.b)
		if _, err := restrictTrie(f, discard{}, some(int(m.counts[0]))); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

type discard struct{}

func (discard) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
