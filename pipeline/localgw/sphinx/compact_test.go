package sphinx_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

// cacheFiles lists dir's files.
func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	files := map[string]time.Time{}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = fi.ModTime()
	}
	return files
}

// The compact model is derived once into the cache and found there
// afterwards; a decoder made from it recognises speech.
func TestCompactModelCached(t *testing.T) {
	requireSphinx(t)
	dir := t.TempDir()
	cfg := sphinx.Config{CacheDir: dir}
	d := newDecoder(t, cfg)
	files := cacheFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("cache after a load: %v, want a language model and a dictionary", files)
	}
	for name := range files {
		if !strings.HasPrefix(name, "compact-") || !(strings.HasSuffix(name, ".lm.bin") || strings.HasSuffix(name, ".dict")) {
			t.Errorf("cache file %q", name)
		}
	}
	if s := recognize(t, d, utterance(espeakVoice(t).speak(t, "what is the weather like today"))); !strings.Contains(s, "weather") {
		t.Errorf("recognised %q", s)
	}
	start := time.Now()
	newDecoder(t, cfg)
	t.Logf("a load from the cache: %v", time.Since(start))
	if again := cacheFiles(t, dir); !maps.Equal(again, files) {
		t.Errorf("the second load wrote the cache again: %v, then %v", files, again)
	}
}

// A cache that cannot be written costs time, not recognition: each load
// derives its own copy and removes it.
func TestCompactModelWithoutCache(t *testing.T) {
	requireSphinx(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDecoder(t, sphinx.Config{CacheDir: filepath.Join(blocked, "cache")})
	if s := recognize(t, d, utterance(espeakVoice(t).speak(t, "thank you very much"))); s == "" {
		t.Error("recognised nothing")
	}
	if files := cacheFiles(t, tmp); len(files) != 0 {
		t.Errorf("the load's own copy is left behind: %v", files)
	}
}

// Prepare makes the files without loading a decoder; the first Get then
// loads from them.
func TestPoolPrepare(t *testing.T) {
	requireSphinx(t)
	dir := t.TempDir()
	p := newPool(t, sphinx.Config{CacheDir: dir}, 2)
	if err := p.Prepare(); err != nil {
		t.Fatal(err)
	}
	if n := p.Live(); n != 0 {
		t.Fatalf("%d decoders after Prepare, want none", n)
	}
	files := cacheFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("cache after Prepare: %v", files)
	}
	start := time.Now()
	p.Put(get(t, p))
	t.Logf("the first Get after Prepare: %v", time.Since(start))
	if again := cacheFiles(t, dir); !maps.Equal(again, files) {
		t.Error("Get derived the model again")
	}
	if n := p.Live(); n != 1 {
		t.Errorf("%d decoders after a Get and Put, want 1", n)
	}
}
