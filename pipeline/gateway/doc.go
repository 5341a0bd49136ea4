// Package gateway is the client of a LiveKit Inference gateway, exactly as
// ../shared/docs/GATEWAY_PROTOCOL.md describes it: the LLM over
// OpenAI-compatible SSE (package openai's Chat, with a fresh access token
// per request), STT and TTS over WebSockets. A refused WebSocket handshake
// (HTTP 429 with a quota body, 401) is read and typed like any HTTP error,
// so STT and TTS quota errors are as precise as the LLM's.
package gateway
