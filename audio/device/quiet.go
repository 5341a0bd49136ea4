package device

/*
#cgo pkg-config: alsa
#cgo LDFLAGS: -ldl
#include <alsa/asoundlib.h>
#include <dlfcn.h>

static void voicetui_alsa_silent(const char *file, int line, const char *function, int err, const char *fmt, ...) {}
static void voicetui_jack_silent(const char *msg) {}

// voicetui_quiet silences ALSA's and JACK's stderr chatter. JACK is looked
// up at run time: libportaudio loads it, but we do not link against it.
static void voicetui_quiet(void) {
	snd_lib_error_set_handler(voicetui_alsa_silent);
	void (*set_error)(void (*)(const char *)) = dlsym(RTLD_DEFAULT, "jack_set_error_function");
	void (*set_info)(void (*)(const char *)) = dlsym(RTLD_DEFAULT, "jack_set_info_function");
	if (set_error) set_error(voicetui_jack_silent);
	if (set_info) set_info(voicetui_jack_silent);
}
*/
import "C"

import "sync"

var quietOnce sync.Once

// Quiet stops ALSA and JACK from printing to stderr, where they would
// scribble over a terminal UI ("jack server is not running", "cannot find
// card"). It is process-wide and idempotent; Init calls it.
func Quiet() { quietOnce.Do(func() { C.voicetui_quiet() }) }
