package roomtest

// Gateway is the agent's inference backend: anything serving the LiveKit
// Inference protocol (POST /chat/completions, GET /models, WebSockets /stt
// and /tts) under a base URL ending in /v1, reachable from inside the
// namespace.
//
// The intended implementation is the project's embedded gateway, in the
// test process itself (the test process is inside the namespace, so
// loopback is fine):
//
//	gw, err := localgw.New(localgw.Options{STTScript: []string{"hello there"}})
//	if err != nil { t.Fatal(err) }
//	if err := gw.Start("127.0.0.1:0"); err != nil { t.Fatal(err) }
//	t.Cleanup(func() { gw.Close(context.Background()) })
//	roomtest.StartAgent(t, srv, roomtest.InferenceEnv(gw))   // *localgw.Server has URL()

type Gateway interface {
	// URL is the inference base URL, ending in /v1.
	URL() string
}

// The credentials the agent signs inference requests with: the embedded
// gateway's defaults (localgw.DefaultKey, localgw.DefaultSecret).
const (
	InferenceKey    = "devkey"
	InferenceSecret = "secret"
)

// InferenceEnv is the agent environment for gw (see StartAgent): its URL
// and InferenceKey/InferenceSecret (without them the agent would sign with
// the server's APIKey/APISecret). Override LIVEKIT_INFERENCE_API_KEY and
// _SECRET in the map for a gateway with other credentials.
func InferenceEnv(gw Gateway) map[string]string {
	return map[string]string{
		"LIVEKIT_INFERENCE_URL":        gw.URL(),
		"LIVEKIT_INFERENCE_API_KEY":    InferenceKey,
		"LIVEKIT_INFERENCE_API_SECRET": InferenceSecret,
	}
}
