package sphinx

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// The compact model: the language model cut down to its Vocabulary most
// probable words that the dictionary has, and the dictionary to those
// words, then its n-grams pruned (prune.go). A decoder's memory is mostly
// its words (the search's lexicon tree, the dictionary) and the n-grams it
// loads (all of them, with no mmap); the default model's 134k-word
// dictionary and 72k-word trigram model take about 95 MB, its 10,000 most
// probable words about 34 MB, and pruned about 21 MB.
//
// The vocabulary's cut keeps every n-gram made only of kept words, with
// its probability and backoff, so that fewer rare words compete with the
// common ones.
// Measured (BenchmarkWER): no worse on the benchmark's sentences, and no
// worse on 30 others of everyday speech but for espeak-ng over digital
// silence (63% for 61%); a word outside the 10,000 cannot be recognised.
//
// The files are derived once, in one pass over the model that holds a few
// MB, and kept in CacheDir under a name that depends on the source files
// (path, size, time) and the vocabulary, so an updated model is derived
// again.

// DefaultVocabulary is the words Config keeps by default.
const DefaultVocabulary = 10000

// compactVersion changes when the derivation does: the cache's files of
// another version are not used.
const compactVersion = "2"

// compactFiles are a compact model's language model and dictionary.
type compactFiles struct {
	lm, dict string
	temp     string // a directory to remove once loaded ("" for the cache's)
}

// compact returns the compact model of c (withDefaults done, files
// checked), deriving it into the cache when it is not there yet, or into a
// temporary directory when the cache cannot be written. ok is false when
// the model is to be loaded as it is: Vocabulary is negative, or the
// language model is not a binary trie (ARPA text, the old DMP format), or
// has no more words than Vocabulary.
func (c Config) compact() (f compactFiles, ok bool, err error) {
	if c.Vocabulary < 0 {
		return f, false, nil
	}
	key, err := c.compactKey()
	if err != nil {
		return f, false, err
	}
	dir := c.CacheDir
	if dir == "" {
		if dir, err = os.UserCacheDir(); err == nil {
			dir = filepath.Join(dir, "voicetui", "sphinx")
		}
	}
	if dir != "" {
		f = compactFiles{lm: filepath.Join(dir, key+".lm.bin"), dict: filepath.Join(dir, key+".dict")}
		if exists(f.lm) && exists(f.dict) {
			return f, true, nil
		}
		if err = os.MkdirAll(dir, 0o700); err == nil {
			if ok, err = c.deriveLean(f); err == nil || !ok {
				if ok {
					removeOthers(dir, key)
				}
				return f, ok, err
			}
		}
	}
	// No cache to write to: this load's own copy.
	tmp, err := os.MkdirTemp("", "voicetui-sphinx-")
	if err != nil {
		return f, false, err
	}
	f = compactFiles{lm: filepath.Join(tmp, "lm.bin"), dict: filepath.Join(tmp, "dict"), temp: tmp}
	if ok, err = c.deriveLean(f); !ok || err != nil {
		os.RemoveAll(tmp)
		return compactFiles{}, ok, err
	}
	return f, true, nil
}

// deriveLean is derive with its memory kept down and given back: the
// pruning holds the bigrams whole (about 20 MB of Go heap for the default
// model), which the collector's default pace would let grow to twice that,
// and which the Go runtime would return to the system over minutes, after
// a decoder had loaded on top of it. Measured on a first run (no cache):
// the conversation's peak 107 MB before, with the derivation as it was.
func (c Config) deriveLean(f compactFiles) (bool, error) {
	defer debug.FreeOSMemory()
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	return c.derive(f)
}

// compactKey names the compact model of c's files and vocabulary.
func (c Config) compactKey() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "voicetui sphinx compact %s\nwords %d\nbigrams %d\ntrigrams %d\n", compactVersion, c.vocabulary(), Bigrams, Trigrams)
	for _, p := range []string{c.LM, c.Dict} {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d %d\n", abs, fi.Size(), fi.ModTime().UnixNano())
	}
	return "compact-" + hex.EncodeToString(h.Sum(nil))[:20], nil
}

func (c Config) vocabulary() int {
	if c.Vocabulary == 0 {
		return DefaultVocabulary
	}
	return c.Vocabulary
}

// derive writes f's files from c's model. ok is false (and nothing is
// written) when the model is to be loaded as it is.
func (c Config) derive(f compactFiles) (ok bool, err error) {
	src, err := os.Open(c.LM)
	if err != nil {
		return false, err
	}
	defer src.Close()
	m, err := readTrie(src)
	if errors.Is(err, errNotTrie) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if int(m.counts[0]) <= c.vocabulary() {
		return false, nil
	}
	uni, err := m.readUnigrams(src)
	if err != nil {
		return false, err
	}
	words, err := m.readWords(src)
	if err != nil {
		return false, err
	}
	keep, err := chooseWords(c.Dict, words, uni, c.vocabulary())
	if err != nil {
		return false, err
	}
	// The dictionary first: the language model's presence says both are
	// complete (compact checks both anyway).
	if err := writeAtomic(f.dict, func(out *os.File) error { return restrictDict(c.Dict, out, words, keep) }); err != nil {
		return false, err
	}
	// The vocabulary's model first, then its n-grams pruned (prune.go).
	// The first goes through a file beside the result (17 MB for the
	// default model: not held in memory); one a crash leaves is a
	// "compact-*.tmp" that removeOthers deletes later.
	restricted, err := os.CreateTemp(filepath.Dir(f.lm), "compact-words-*.tmp")
	if err != nil {
		return false, err
	}
	defer os.Remove(restricted.Name())
	defer restricted.Close()
	if _, err := restrictTrie(src, restricted, keep); err != nil {
		return false, err
	}
	if err := writeAtomic(f.lm, func(out *os.File) error {
		_, err := pruneTrie(restricted, out, Bigrams, Trigrams)
		if errors.Is(err, errNotPrunable) {
			_, err = io.Copy(out, restricted)
		}
		return err
	}); err != nil {
		return false, err
	}
	return true, nil
}

// chooseWords keeps the n most probable words of the model that the
// dictionary has, and the markers (<s>, </s>, any <...>), which it has
// not.
func chooseWords(dict string, words []string, uni []unigram, n int) ([]bool, error) {
	find := wordIndex(words)
	inDict := make([]bool, len(words))
	if err := eachDictWord(dict, func(w string, _ []byte) {
		if i := find(w); i >= 0 {
			inDict[i] = true
		}
	}); err != nil {
		return nil, err
	}
	var ids []int
	keep := make([]bool, len(words))
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "<") && strings.HasSuffix(w, ">"):
			keep[i] = true
		case inDict[i]:
			ids = append(ids, i)
		}
	}
	slices.SortStableFunc(ids, func(a, b int) int { return cmp.Compare(uni[b].logProb(), uni[a].logProb()) })
	for _, i := range ids[:min(n, len(ids))] {
		keep[i] = true
	}
	return keep, nil
}

// wordIndex finds a word's id: by binary search, the strings being sorted
// as the library writes them, or through a map when they are not.
func wordIndex(words []string) func(string) int {
	if slices.IsSorted(words) {
		return func(w string) int {
			if i, ok := slices.BinarySearch(words, w); ok {
				return i
			}
			return -1
		}
	}
	ids := make(map[string]int, len(words))
	for i, w := range words {
		ids[w] = i
	}
	return func(w string) int {
		if i, ok := ids[w]; ok {
			return i
		}
		return -1
	}
}

// eachDictWord calls fn with each entry's word ("read" for "read(2)") and
// its line.
func eachDictWord(path string, fn func(word string, line []byte)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		field, _, _ := bytes.Cut(bytes.TrimLeft(line, " \t"), []byte(" "))
		field, _, _ = bytes.Cut(field, []byte("\t"))
		if len(field) == 0 {
			continue
		}
		if i := bytes.IndexByte(field, '('); i > 0 {
			field = field[:i]
		}
		fn(string(field), line)
	}
	return sc.Err()
}

// restrictDict writes the dictionary's entries of kept words.
func restrictDict(path string, out *os.File, words []string, keep []bool) error {
	find := wordIndex(words)
	w := bufio.NewWriter(out)
	if err := eachDictWord(path, func(word string, line []byte) {
		if i := find(word); i >= 0 && keep[i] {
			w.Write(line)
			w.WriteByte('\n')
		}
	}); err != nil {
		return err
	}
	return w.Flush()
}

// writeAtomic writes path through a temporary file renamed into place,
// so that a reader never sees half of it.
func writeAtomic(path string, write func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	err = write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// removeOthers deletes the cache's compact models but key's (each is
// some 6 MB, and one made for an older model is never used again), and
// temporary files a crash left behind.
func removeOthers(dir, key string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "compact-") || strings.HasPrefix(name, key+".") {
			continue
		}
		if strings.HasSuffix(name, ".tmp") { // perhaps another process's, being written
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		}
		os.Remove(filepath.Join(dir, name))
	}
}

func exists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
