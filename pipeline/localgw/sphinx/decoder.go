//go:build cgo && unix

package sphinx

/*
#cgo linux,!sphinxlinked LDFLAGS: -ldl
#cgo sphinxlinked pkg-config: pocketsphinx sphinxbase
#cgo sphinxlinked CFLAGS: -DSPHINX_LINKED -Werror=incompatible-pointer-types
#include "glue.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"
)

// libName is the library's soname: 5prealpha's ABI, the one glue.h
// declares. Homebrew's 5.x is libpocketsphinx.5.dylib, a different API,
// and is never opened.
func libName() string {
	if runtime.GOOS == "darwin" {
		return "libpocketsphinx.3.dylib"
	}
	return "libpocketsphinx.so.3"
}

// lib is the package's only package-level state: the library's function
// table, loaded at most once and never changed afterwards (the dlopen
// handle stays open for the life of the process, as decoders may), so
// any number of goroutines read it without locking. A failed load is
// remembered too: a library installed later is used after a restart.
var lib = sync.OnceValues(func() (*C.psapi, error) { return open(libName()) })

// open loads the library named name and installs the log capture.
func open(name string) (*C.psapi, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var reason [C.GLUE_ERRLEN]C.char
	api := C.glue_open(cname, &reason[0])
	if api == nil {
		return nil, fmt.Errorf("sphinx: %w: %s: %s", ErrUnavailable, C.GoString(&reason[0]), installHint)
	}
	return api, nil
}

// Available says whether New(Config{}) can work: the library loads and
// Debian's default model is installed. Its error wraps ErrUnavailable and
// says what to install. It loads the library the first time (a few ms),
// not the model.
func Available() error {
	if _, err := lib(); err != nil {
		return err
	}
	_, err := Config{}.check()
	return err
}

// errRec receives the library's error lines during one C call.
type errRec C.glue_err

func (r *errRec) c() *C.glue_err { return (*C.glue_err)(r) }

func (r *errRec) err(op string) *Error {
	return libError(op, C.GoString(&r.first[0]), C.GoString(&r.last[0]), r.fatal != 0)
}

// Decoder recognises one stream of 16 kHz mono speech, one utterance at
// a time. Its methods are safe for concurrent use (they serialise on the
// decoder); separate decoders run in parallel.
type Decoder struct {
	api *C.psapi

	mu      sync.Mutex
	ps      *C.ps_decoder_t // nil once closed
	inUtt   bool
	failed  bool // a library call failed: Pool.Put discards the decoder
	cleanup runtime.Cleanup
}

// New loads the models and returns a decoder ready for Write: for the
// default ones, their compact form (Config.Vocabulary) in about 100 ms
// and 21 MB, once it is derived (the first time, about half a second
// more; Pool.Prepare does it ahead).
func New(cfg Config) (*Decoder, error) {
	api, err := lib()
	if err != nil {
		return nil, err
	}
	args, done, err := cfg.args()
	if err != nil {
		return nil, err
	}
	defer done() // the library has read the files by then
	// argv lives in C memory, so nothing the library reads is Go's; the
	// library copies what it keeps. (cgo's C.malloc never returns nil.)
	argv := (**C.char)(C.malloc(C.size_t(len(args)+1) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	slots := unsafe.Slice(argv, len(args)+1)
	for i, a := range args {
		slots[i] = C.CString(a)
	}
	slots[len(args)] = nil
	defer func() {
		for _, p := range slots {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(argv))
	}()
	var er errRec
	ps := C.glue_init(api, C.int(len(args)), argv, er.c())
	if ps == nil {
		return nil, er.err("new")
	}
	d := &Decoder{api: api, ps: ps}
	// A decoder dropped without Close still gives its memory back.
	d.cleanup = runtime.AddCleanup(d, func(ps *C.ps_decoder_t) { C.glue_free(api, ps) }, ps)
	return d, nil
}

// Start begins an utterance. Write begins one itself when none is open,
// and Start does nothing when one is.
func (d *Decoder) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.start()
}

func (d *Decoder) start() error {
	if d.ps == nil {
		return ErrClosed
	}
	if d.inUtt {
		return nil
	}
	var er errRec
	if C.glue_start(d.api, d.ps, er.c()) < 0 {
		return d.fail(er.err("start"))
	}
	d.inUtt = true
	return nil
}

// Write decodes 16 kHz mono samples, in chunks of any size. Recognition
// runs during the call (at about 9x real time with the default model on
// one core: 5-6 ms for a 50 ms chunk), so Partial is current when Write
// returns.
func (d *Decoder) Write(pcm []int16) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.start(); err != nil {
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	var er errRec
	// Go memory holding no Go pointers may be passed for the call's length.
	if C.glue_process(d.api, d.ps, (*C.int16)(unsafe.Pointer(&pcm[0])), C.size_t(len(pcm)), er.c()) < 0 {
		return d.fail(er.err("write"))
	}
	return nil
}

// Partial is the best hypothesis so far in the open utterance ("" when
// none is open or nothing was recognised yet). It is cheap (well under a
// millisecond): call it after each Write for interim transcripts.
func (d *Decoder) Partial() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ps == nil {
		return "", ErrClosed
	}
	if !d.inUtt {
		return "", nil
	}
	return d.hyp(), nil
}

// End closes the utterance and returns its final hypothesis: lower-case
// words separated by spaces, "" when nothing was recognised or no
// utterance was open. It runs a second pass over the utterance: with the
// default model about 50 ms for a short sentence, up to a few hundred in
// noise. End each turn: an open utterance keeps its features for that
// pass, and its memory grows with it.
func (d *Decoder) End() (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ps == nil {
		return "", ErrClosed
	}
	if !d.inUtt {
		return "", nil
	}
	d.inUtt = false
	var er errRec
	if C.glue_end(d.api, d.ps, er.c()) < 0 {
		return "", d.fail(er.err("end"))
	}
	return d.hyp(), nil
}

// fail records a failed call; d.mu is held. After a fatal error the
// library's state for this decoder is half-updated: it is abandoned (no
// further calls, not even ps_free, which could crash on it) and leaks.
func (d *Decoder) fail(e *Error) error {
	d.failed = true
	if e.Fatal {
		d.cleanup.Stop()
		d.ps, d.inUtt = nil, false
	}
	return e
}

// hyp copies the decoder's hypothesis; d.mu is held.
func (d *Decoder) hyp() string {
	if s := C.glue_hyp(d.api, d.ps); s != nil {
		return C.GoString(s)
	}
	return ""
}

// reset makes the decoder ready for another user: it ends an open
// utterance, discarding its text. It reports whether the decoder is fit
// for reuse.
func (d *Decoder) reset() bool {
	if _, err := d.End(); err != nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ps != nil && !d.failed
}

// Close frees the decoder and its models, returning the memory to the
// OS. It waits for a call in progress; later calls return ErrClosed, and
// Close itself may be called again.
func (d *Decoder) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ps == nil {
		return nil
	}
	d.cleanup.Stop()
	C.glue_free(d.api, d.ps)
	d.ps, d.inUtt = nil, false
	return nil
}
