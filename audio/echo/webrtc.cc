//go:build linux && !noaec && !aec1

// The WebRTC audio processing module (0.3, Debian's
// libwebrtc-audio-processing) configured for echo cancellation only.
#include <webrtc/modules/audio_processing/include/audio_processing.h>

extern "C" {
#include "webrtc.h"
}

namespace {
struct aec {
  webrtc::AudioProcessing *apm;
  int rate;
};
}  // namespace

void *voicetui_aec_new(int rate) {
  webrtc::Config config;
  // The extended filter: a longer echo path, sturdier against jitter.
  config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
  // The delay is ours to measure (audio/echo aligns the reference).
  config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(false));
  webrtc::AudioProcessing *apm = webrtc::AudioProcessing::Create(config);
  if (apm == nullptr) return nullptr;
  apm->echo_cancellation()->enable_drift_compensation(false);
  // Moderate: the user talking over the agent loses about 5 dB; high
  // takes 7, for no more echo taken out once converged (measured).
  apm->echo_cancellation()->set_suppression_level(webrtc::EchoCancellation::kModerateSuppression);
  if (apm->echo_cancellation()->Enable(true) != 0) {
    delete apm;
    return nullptr;
  }
  aec *a = new aec;
  a->apm = apm;
  a->rate = rate;
  return a;
}

int voicetui_aec_process(void *h, const int16_t *mic, const int16_t *ref, int16_t *out, int n, int delay_ms) {
  aec *a = static_cast<aec *>(h);
  float near[480], far[480];
  if (n > 480) return -1;
  for (int i = 0; i < n; i++) {
    near[i] = mic[i] / 32768.0f;
    far[i] = ref[i] / 32768.0f;
  }
  float *pn = near, *pf = far;
  int err = a->apm->AnalyzeReverseStream(&pf, n, a->rate, webrtc::AudioProcessing::kMono);
  if (err == 0) err = a->apm->set_stream_delay_ms(delay_ms);
  if (err == 0) err = a->apm->ProcessStream(&pn, n, a->rate, webrtc::AudioProcessing::kMono, a->rate, webrtc::AudioProcessing::kMono, &pn);
  for (int i = 0; i < n; i++) {
    float v = near[i] * 32768.0f;
    out[i] = v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : (int16_t)v;
  }
  return err;
}

void voicetui_aec_free(void *h) {
  aec *a = static_cast<aec *>(h);
  delete a->apm;
  delete a;
}
