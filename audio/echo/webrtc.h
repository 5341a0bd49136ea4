// A C face for WebRTC's audio processing module (C++), for cgo.
#include <stdint.h>

void *voicetui_aec_new(int rate);
// voicetui_aec_process cancels the echo of ref in mic (n samples, 10 ms)
// into out; delay_ms is how much later the echo arrives than ref.
int voicetui_aec_process(void *h, const int16_t *mic, const int16_t *ref, int16_t *out, int n, int delay_ms);
void voicetui_aec_free(void *h);
