//go:build aec1 && !noaec

// The WebRTC audio processing module 1.x (libwebrtc-audio-processing-dev
// in Debian 13 and current Ubuntu, webrtc-audio-processing in Homebrew;
// pkg-config webrtc-audio-processing-1) configured for echo cancellation
// only, as webrtc.cc configures 0.3. Behind the same C face (webrtc.h).
//
// Where 1.x differs from what webrtc.cc sets:
//   - 1.x has one canceller, AEC3; 0.3's older one and its settings are
//     gone. No extended filter to switch on: AEC3's filter and
//     suppressor are tuned through EchoCanceller3Config, which only an
//     echo control factory takes, and 1.x installs no header for AEC3's
//     factory (api/audio/echo_canceller3_factory.h). So AEC3 runs with
//     its defaults.
//   - No suppression level (webrtc.cc: moderate): AEC3's suppressor has
//     its own tuning (same reason), not 0.3's three levels.
//   - No delay-agnostic switch (webrtc.cc turns it off: we measure the
//     delay): AEC3 always estimates the delay itself. The delay is still
//     handed over (1.x requires set_stream_delay_ms with echo processing
//     on), but AEC3 only follows it with use_external_delay_estimator,
//     again a factory setting.
//   - No drift compensation to turn off: AEC3's (has_clock_drift) is a
//     factory setting too, off by default.
//   - High-pass filter: off in webrtc.cc (0.3's default), and off here,
//     including the one AEC3 forces on by default
//     (enforce_high_pass_filtering), so the microphone's signal is only
//     altered by the echo's removal, as with 0.3.
//   - Noise suppression, gain control, transient suppression: off, as in
//     webrtc.cc (0.3's defaults; 1.x's defaults too, set here plainly).
//   - The residual echo detector (1.x: on by default) only computes
//     statistics nobody reads: off.
//   - 16-bit frames in and out (1.x takes them directly; webrtc.cc
//     converts to float for 0.3's float interface).
#include <modules/audio_processing/include/audio_processing.h>

extern "C" {
#include "webrtc.h"
}

namespace {
struct aec {
  webrtc::AudioProcessing *apm;
  webrtc::StreamConfig stream;  // 10 ms, mono, at the rate asked for
};
}  // namespace

void *voicetui_aec_new(int rate) {
  webrtc::AudioProcessing *apm = webrtc::AudioProcessingBuilder().Create();
  if (apm == nullptr) return nullptr;
  webrtc::AudioProcessing::Config config;
  config.echo_canceller.enabled = true;
  config.echo_canceller.mobile_mode = false;  // AEC3, not the mobile AECM
  config.echo_canceller.enforce_high_pass_filtering = false;
  config.high_pass_filter.enabled = false;
  config.noise_suppression.enabled = false;
  config.gain_controller1.enabled = false;
  config.gain_controller2.enabled = false;
  config.transient_suppression.enabled = false;
  config.residual_echo_detector.enabled = false;
  apm->ApplyConfig(config);
  aec *a = new aec;
  a->apm = apm;
  a->stream = webrtc::StreamConfig(rate, 1);
  return a;
}

int voicetui_aec_process(void *h, const int16_t *mic, const int16_t *ref, int16_t *out, int n, int delay_ms) {
  aec *a = static_cast<aec *>(h);
  // The 16-bit interface takes exactly one 10 ms frame at a native rate.
  if (n != static_cast<int>(a->stream.num_frames()) || n > 480) return -1;
  int16_t far[480];  // what render processing would make of ref: unused
  int err = a->apm->ProcessReverseStream(ref, a->stream, a->stream, far);
  if (err == 0) err = a->apm->set_stream_delay_ms(delay_ms);
  if (err == 0) err = a->apm->ProcessStream(mic, a->stream, a->stream, out);
  return err;
}

void voicetui_aec_free(void *h) {
  aec *a = static_cast<aec *>(h);
  // Create's object is reference counted, but its count starts at zero
  // (checked against 1.3: AddRef then Release drops the last reference),
  // so it is ours to delete, as webrtc.cc does with 0.3.
  delete a->apm;
  delete a;
}
