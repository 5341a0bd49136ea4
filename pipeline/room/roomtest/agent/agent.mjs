// agent.mjs: the agents-js 1.9.0 voice agent that room tests run (see package
// roomtest). STT, LLM and TTS go through the LiveKit Inference protocol at
// LIVEKIT_INFERENCE_URL (the test's gateway); nothing reaches the cloud.
//
//   node agent.mjs start
//
// Environment (roomtest.StartAgent sets the first five):
//   LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET  the test's livekit-server
//   LIVEKIT_INFERENCE_URL  inference base URL ending in /v1 (required)
//   AGENT_HEALTH_PORT      the worker's health server port on 127.0.0.1
//   AGENT_GREETING         if set, the agent says it when it joins (default: silent)
//   AGENT_INSTRUCTIONS     the LLM instructions (default: a terse test assistant)
//
// Besides the SDK's JSON logs it prints one line per session event,
// `AGENTEV {...}`, to make failures readable in the test's log dump.
import { fileURLToPath } from 'node:url';
import { ServerOptions, cli, defineAgent, inference, voice } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';

if (!process.env.LIVEKIT_INFERENCE_URL) {
  // Without it inference.* would dial the cloud gateway.
  console.error('agent.mjs: LIVEKIT_INFERENCE_URL is not set');
  process.exit(2);
}

const t0 = Date.now();
const ev = (type, fields = {}) =>
  process.stdout.write(`AGENTEV ${JSON.stringify({ t_ms: Date.now() - t0, pid: process.pid, type, ...fields })}\n`);

const SESSION_EVENTS = [
  'agent_state_changed',
  'user_state_changed',
  'user_input_transcribed',
  'conversation_item_added',
  'error',
  'close',
];

function describe(name, e) {
  switch (name) {
    case 'agent_state_changed':
    case 'user_state_changed':
      return { old: e.oldState, new: e.newState };
    case 'user_input_transcribed':
      return { transcript: e.transcript, final: e.isFinal };
    case 'conversation_item_added':
      return { role: e.item?.role, text: e.item?.textContent };
    case 'error':
      return {
        label: e.error?.label,
        error: String(e.error?.error ?? e.error),
        status: e.error?.error?.statusCode,
        recoverable: e.error?.recoverable,
      };
    case 'close':
      return { reason: e.reason, error: e.error ? String(e.error.error ?? e.error) : null };
  }
  return {};
}

export default defineAgent({
  prewarm: async (proc) => {
    const t = Date.now();
    proc.userData.vad = await silero.VAD.load(); // the model ships inside the plugin: offline
    ev('prewarmed', { vad_load_ms: Date.now() - t });
  },
  entry: async (ctx) => {
    ev('job', { room: ctx.job.room?.name, job_id: ctx.job.id });
    const session = new voice.AgentSession({
      vad: ctx.proc.userData.vad,
      stt: new inference.STT({ model: 'deepgram/nova-3', language: 'en' }),
      llm: new inference.LLM({ model: 'openai/gpt-4.1-mini' }),
      tts: new inference.TTS({ model: 'cartesia/sonic-2', language: 'en' }),
      // VAD-only turn taking: the SDK's defaults open the cloud-only /eot and
      // /bargein sockets.
      turnHandling: { turnDetection: 'vad', interruption: { mode: 'vad' } },
    });
    for (const name of SESSION_EVENTS) {
      session.on(name, (e) => ev('session', { event: name, ...describe(name, e) }));
    }
    await session.start({
      agent: new voice.Agent({
        instructions: process.env.AGENT_INSTRUCTIONS || 'You are a terse test assistant.',
      }),
      room: ctx.room,
    });
    await ctx.connect();
    ev('connected');
    if (process.env.AGENT_GREETING) session.say(process.env.AGENT_GREETING);
  },
});

cli.runApp(
  new ServerOptions({
    agent: fileURLToPath(import.meta.url),
    // `start` defaults do not suit a test box: loadThreshold 0.7 of CPU (a busy
    // 2-core machine refuses jobs), 2 idle processes, a health server on
    // 0.0.0.0:8081 (clashes between parallel agents). One warm job process,
    // never "full", health server on a loopback port the test picked
    // (`port: 0` means 8081 to agents-js: it does `port || 8081`).
    numIdleProcesses: 1,
    loadThreshold: Infinity,
    host: '127.0.0.1',
    port: Number(process.env.AGENT_HEALTH_PORT) || 0,
  }),
);
