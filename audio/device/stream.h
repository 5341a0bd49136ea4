// stream.h: the microphone's PortAudio stream with a callback written in
// C. gordonklaus/portaudio (used for everything else: initialisation,
// devices, formats) only offers callbacks written in Go, and a Go
// callback on PortAudio's own thread keeps the Go scheduler's monitor
// spinning after each buffer (the callback's return leaves a processor
// in a system call for up to 10 ms, and the monitor polls it every 20 us
// until it takes it back): measured, about 300 wakes a second and a
// third of an idle session's CPU. Here the callback copies into a ring
// and, when the reader is waiting, writes one byte to a pipe, which the
// Go side reads through its network poller like any other file.
#include <errno.h>
#include <fcntl.h>
#include <portaudio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	PaStream *stream;
	int channels;       // 1 or 2 (downmixed here)
	int16_t *ring;      // mono samples
	uint64_t size;      // ring capacity, samples
	uint64_t w, r;      // written and read counts (w: the callback; r: Go)
	int wake[2];        // pipe: [0] read by Go, [1] written here
	int waiting;        // Go is waiting for audio: write to the pipe
	int64_t last_ns;    // wall clock of the last callback
	int64_t overflows;  // buffers PortAudio flagged as overflowed
	int64_t dropped;    // samples lost because Go fell behind
} vt_capture;

static int vt_callback(const void *in, void *out, unsigned long frames,
		const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags, void *user) {
	vt_capture *c = user;
	(void)out;
	(void)ti;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	__atomic_store_n(&c->last_ns, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, __ATOMIC_RELAXED);
	if (flags & paInputOverflow)
		__atomic_add_fetch(&c->overflows, 1, __ATOMIC_RELAXED);
	const int16_t *s = in;
	if (s != NULL && frames > 0) {
		uint64_t w = c->w, r = __atomic_load_n(&c->r, __ATOMIC_ACQUIRE);
		uint64_t room = c->size - (w - r);
		unsigned long n = frames <= room ? frames : (unsigned long)room;
		for (unsigned long i = 0; i < n; i++) {
			int v = c->channels == 2 ? ((int)s[2 * i] + (int)s[2 * i + 1]) / 2 : s[i];
			c->ring[(w + i) % c->size] = (int16_t)v;
		}
		__atomic_store_n(&c->w, w + n, __ATOMIC_SEQ_CST);
		if (n < frames)
			__atomic_add_fetch(&c->dropped, (int64_t)(frames - n), __ATOMIC_RELAXED);
	}
	if (__atomic_exchange_n(&c->waiting, 0, __ATOMIC_SEQ_CST)) {
		char b = 1;
		ssize_t unused = write(c->wake[1], &b, 1); // a full pipe already wakes
		(void)unused;
	}
	return paContinue;
}

// vt_capture_open opens (not starts) a stream on device; *err is
// PortAudio's error, or paInsufficientMemory, or paInternalError when the
// pipe could not be made (errno in *sys).
static vt_capture *vt_capture_open(int device, int channels, double rate, double latency,
		unsigned long frames, uint64_t queue, int *err, int *sys) {
	vt_capture *c = calloc(1, sizeof *c);
	if (c == NULL || (c->ring = calloc(queue, sizeof(int16_t))) == NULL) {
		free(c);
		*err = paInsufficientMemory;
		return NULL;
	}
	c->size = queue;
	c->channels = channels;
	struct timespec now; // no audio yet counts from the open
	clock_gettime(CLOCK_REALTIME, &now);
	c->last_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	if (pipe(c->wake) != 0) {
		*sys = errno;
		*err = paInternalError;
		free(c->ring);
		free(c);
		return NULL;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(c->wake[i], F_SETFL, fcntl(c->wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(c->wake[i], F_SETFD, FD_CLOEXEC);
	}
	PaStreamParameters in;
	memset(&in, 0, sizeof in);
	in.device = device;
	in.channelCount = channels;
	in.sampleFormat = paInt16;
	in.suggestedLatency = latency;
	*err = Pa_OpenStream(&c->stream, &in, NULL, rate, frames, paNoFlag, vt_callback, c);
	if (*err != paNoError) {
		close(c->wake[0]);
		close(c->wake[1]);
		free(c->ring);
		free(c);
		return NULL;
	}
	return c;
}

// vt_capture_read moves up to n samples to p; when there are none it
// asks the callback for a wake and returns 0.
static unsigned long vt_capture_read(vt_capture *c, int16_t *p, unsigned long n) {
	uint64_t r = c->r, w = __atomic_load_n(&c->w, __ATOMIC_ACQUIRE);
	if (w == r) {
		__atomic_store_n(&c->waiting, 1, __ATOMIC_SEQ_CST);
		// Written between the two loads: the wake may have been missed.
		w = __atomic_load_n(&c->w, __ATOMIC_SEQ_CST);
		if (w == r)
			return 0;
	}
	uint64_t k = w - r < n ? w - r : n;
	for (uint64_t i = 0; i < k; i++)
		p[i] = c->ring[(r + i) % c->size];
	__atomic_store_n(&c->r, r + k, __ATOMIC_RELEASE);
	return (unsigned long)k;
}

// vt_capture_last is the wall clock of the last callback (of the open
// before the first), in ns.
static int64_t vt_capture_last(vt_capture *c) { return __atomic_load_n(&c->last_ns, __ATOMIC_RELAXED); }

// vt_capture_overflows reports the device's overflowed buffers and the
// samples dropped because the ring was full.
static void vt_capture_overflows(vt_capture *c, int64_t *device, int64_t *dropped) {
	*device = __atomic_load_n(&c->overflows, __ATOMIC_RELAXED);
	*dropped = __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);
}

// vt_capture_close stops and closes the stream (the callback has
// returned for good then) and frees the ring; the pipe's read end is
// Go's to close.
static int vt_capture_close(vt_capture *c) {
	int err = Pa_StopStream(c->stream);
	int cerr = Pa_CloseStream(c->stream);
	close(c->wake[1]);
	free(c->ring);
	free(c);
	return err != paNoError ? err : cerr;
}
