package sphinx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SampleRate is the only rate the en-us acoustic model accepts: Write
// takes 16 kHz mono.
const SampleRate = 16000

// Debian's pocketsphinx-en-us: the acoustic model, a 26 MB trigram model
// of general English and the 134k-word CMU dictionary.
const (
	ModelDir    = "/usr/share/pocketsphinx/model/en-us"
	DefaultHMM  = ModelDir + "/en-us"
	DefaultLM   = ModelDir + "/en-us.lm.bin"
	DefaultDict = ModelDir + "/cmudict-en-us.dict"
)

// Config chooses the model files; an empty field takes Debian's default.
//
// The default language model is the general one on purpose: the embedded
// gateway's demo agent answers a few words (help, time, hello, goodbye)
// and otherwise repeats what it heard, so any sentence may come. A small
// model built from 44 demo-like phrases loads in 9 ms and 17 MB, but
// turns other sentences into its own words: measured, 80% word errors on
// sentences outside it (general model: 7% flite, 29% espeak-ng), and 23%
// even on the benchmark's everyday sentences (general model: 5% flite,
// 43% espeak-ng). LM accepts such a model (ARPA text or binary) for
// narrower uses, with a Dict that has its words.
//
// What is loaded by default is the general model's compact form
// (compact.go): its 10,000 most probable words and their most telling
// n-grams (prune.go), about 21 MB instead of 95.
type Config struct {
	HMM  string // acoustic model directory ("-hmm"), holding mdef, means, ...
	Dict string // pronunciation dictionary ("-dict")
	LM   string // n-gram language model, ARPA text or binary ("-lm")
	// Vocabulary is how many of LM's most probable words (of those Dict
	// has) recognition knows: 0 is DefaultVocabulary, negative all of them
	// (the model as it is, some 60 MB more for the default one). It cuts
	// down binary models only; ARPA text is loaded as it is.
	Vocabulary int
	// CacheDir keeps the compact models derived from LM and Dict (about
	// 6 MB for the default); "" is the user's cache directory
	// (os.UserCacheDir, then voicetui/sphinx). When it cannot be written,
	// each load derives its own copy (half a second) and removes it.
	CacheDir string
}

// withDefaults fills empty fields.
func (c Config) withDefaults() Config {
	if c.HMM == "" {
		c.HMM = DefaultHMM
	}
	if c.Dict == "" {
		c.Dict = DefaultDict
	}
	if c.LM == "" {
		c.LM = DefaultLM
	}
	return c
}

// check fills the defaults and checks the files. Checking here turns a
// missing or unreadable file into a Go error that names it: the library
// would log a vaguer line or, for some files, exit the process (E_FATAL).
// A missing default file means the model package is not installed and
// wraps ErrUnavailable.
func (c Config) check() (Config, error) {
	c = c.withDefaults()
	for _, f := range []struct {
		opt, path, def string
		dir            bool
	}{
		{"-hmm", c.HMM, DefaultHMM, true},
		{"-dict", c.Dict, DefaultDict, false},
		{"-lm", c.LM, DefaultLM, false},
	} {
		if err := checkFile(f.path, f.dir); err != nil {
			if f.path == f.def && errors.Is(err, fs.ErrNotExist) {
				return c, fmt.Errorf("sphinx: %w: no default model %s: %s", ErrUnavailable, f.path, installHint)
			}
			return c, fmt.Errorf("sphinx: %s: %w", f.opt[1:], err)
		}
	}
	return c, nil
}

// args checks the files and returns the library's argv, with the compact
// model's files in place of LM and Dict when there is one (made now if it
// has to be: see compact). done is for after the load: it removes a
// compact model made for this load only. A compact model that cannot be
// made is not an error here: the files are loaded as they are.
func (c Config) args() (argv []string, done func(), err error) {
	c, err = c.check()
	if err != nil {
		return nil, nil, err
	}
	done = func() {}
	if f, ok, err := c.compact(); ok && err == nil {
		c.LM, c.Dict = f.lm, f.dict
		if f.temp != "" {
			done = func() { os.RemoveAll(f.temp) }
		}
	}
	return []string{"-hmm", c.HMM, "-dict", c.Dict, "-lm", c.LM}, done, nil
}

// checkFile says whether path is a readable file, or for an acoustic model
// a directory with the model's files in it.
func checkFile(path string, dir bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() != dir {
		if dir {
			return fmt.Errorf("%s: not a directory", path)
		}
		return fmt.Errorf("%s: is a directory", path)
	}
	if !dir {
		return readable(path)
	}
	// The files the library needs and would exit the process without
	// (E_FATAL; the glue recovers from that too, leaking the model).
	for _, name := range []string{"mdef", "means", "variances", "transition_matrices"} {
		if err := readable(filepath.Join(path, name)); err != nil {
			return err
		}
	}
	if readable(filepath.Join(path, "sendump")) != nil && readable(filepath.Join(path, "mixture_weights")) != nil {
		return fmt.Errorf("%s: neither sendump nor mixture_weights is readable", path)
	}
	return nil
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
