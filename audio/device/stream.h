// stream.h: the microphone's PortAudio stream with a callback written in
// C. gordonklaus/portaudio (used for everything else: initialisation,
// devices, formats) only offers callbacks written in Go, and a Go
// callback on PortAudio's own thread keeps the Go scheduler's monitor
// spinning after each buffer (the callback's return leaves a processor
// in a system call for up to 10 ms, and the monitor polls it every 20 us
// until it takes it back): measured, about 300 wakes a second and a
// third of an idle session's CPU. Here the callback copies into a ring
// and, when the reader is waiting, signals a file descriptor that Go's
// network poller watches. Go reads the ring itself (capture.go), with
// atomics and no cgo call: a system call or a cgo call made from an idle
// process wakes the scheduler's monitor, which then polls while the
// buffer is handled. On Linux the descriptor is an eventfd that is never
// read: the poller is edge-triggered and each write is an edge. Elsewhere
// it is a pipe, which the reader drains.
#include <errno.h>
#include <fcntl.h>
#include <portaudio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

typedef struct {
	PaStream *stream;
	int channels;       // 1 or 2 (downmixed here)
	int16_t *ring;      // mono samples
	uint64_t size;      // ring capacity, samples
	// 8-aligned for Go's 64-bit atomics, also where C aligns them on 4 (i386)
	uint64_t w __attribute__((aligned(8)));       // written count (the callback)
	uint64_t r __attribute__((aligned(8)));       // read count (Go)
	int wake[2];        // [0] watched by Go, [1] written here (one eventfd on Linux)
	int32_t waiting;    // Go is waiting for audio: signal wake[1]
	int64_t last_ns __attribute__((aligned(8)));  // wall clock of the last callback
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
		uint64_t one = 1; // an eventfd takes 8 bytes (a pipe takes them too, and is drained)
		ssize_t unused = write(c->wake[1], &one, sizeof one); // a full pipe already wakes
		(void)unused;
	}
	return paContinue;
}

// vt_capture_open opens (not starts) a stream on device; *err is
// PortAudio's error, or paInsufficientMemory, or paInternalError when the
// wake descriptor could not be made (errno in *sys).
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
#ifdef __linux__
	c->wake[0] = c->wake[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int made = c->wake[0] >= 0;
#else
	int made = pipe(c->wake) == 0;
	if (made)
		for (int i = 0; i < 2; i++) {
			fcntl(c->wake[i], F_SETFL, fcntl(c->wake[i], F_GETFL) | O_NONBLOCK);
			fcntl(c->wake[i], F_SETFD, FD_CLOEXEC);
		}
#endif
	if (!made) {
		*sys = errno;
		*err = paInternalError;
		free(c->ring);
		free(c);
		return NULL;
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
		if (c->wake[1] != c->wake[0])
			close(c->wake[1]);
		free(c->ring);
		free(c);
		return NULL;
	}
	return c;
}

// vt_capture_overflows reports the device's overflowed buffers and the
// samples dropped because the ring was full.
static void vt_capture_overflows(vt_capture *c, int64_t *device, int64_t *dropped) {
	*device = __atomic_load_n(&c->overflows, __ATOMIC_RELAXED);
	*dropped = __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);
}

// vt_capture_stop stops and closes the stream: the callback has returned
// for good then. Aborted, not stopped: an input stream has nothing to
// drain, and Pa_StopStream waits for the callback thread to see the
// device again, which on a suspended PulseAudio source took two minutes
// (the session closes a stalled microphone from its loop).
static int vt_capture_stop(vt_capture *c) {
	int err = Pa_AbortStream(c->stream);
	int cerr = Pa_CloseStream(c->stream);
	return err != paNoError ? err : cerr;
}

// vt_capture_free frees the ring (after vt_capture_stop, and after Go has
// closed wake[0]: it may be reading the ring until then).
static void vt_capture_free(vt_capture *c) {
	if (c->wake[1] != c->wake[0])
		close(c->wake[1]);
	free(c->ring);
	free(c);
}
