// Drives voicetui's embedded gateway with the real LiveKit inference
// clients of @livekit/agents 1.9.0 (no room, no job): the reference
// client, written by others. It reads LIVEKIT_INFERENCE_URL,
// LIVEKIT_API_KEY and LIVEKIT_API_SECRET like an agent does, and prints
// one JSON line with what it got. Run by agentsjs_test.go.
//
//   node agentsjs_clients.mjs llm TEXT          the streamed reply, or the error
//   node agentsjs_clients.mjs stt WAV FINALS     push speech, never finalize; wait for FINALS finals; close
//   node agentsjs_clients.mjs tts TEXT          the audio of TEXT
import { readFileSync } from 'node:fs';
import { AudioFrame } from '@livekit/rtc-node';
import { inference, initializeLogger, llm, stt } from '@livekit/agents';

initializeLogger({ pretty: false, level: 'warn' });

// A crash inside the client (agents-js 1.9.0 throws from a socket handler
// when a message comes after it closed its stream) must fail the run.
process.on('uncaughtException', (err) => {
  console.error('uncaught:', err);
  process.exit(3);
});

const noRetry = { maxRetry: 0, retryIntervalMs: 100, timeoutMs: 10000 };
const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// readWav returns the samples of a 16-bit mono PCM WAV file.
function readWav(path) {
  const b = readFileSync(path);
  let off = 12;
  let rate = 16000;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4);
    const size = b.readUInt32LE(off + 4);
    if (id === 'fmt ') rate = b.readUInt32LE(off + 12);
    if (id === 'data') {
      const pcm = new Int16Array(size / 2);
      for (let i = 0; i < pcm.length; i++) pcm[i] = b.readInt16LE(off + 8 + 2 * i);
      return { pcm, rate };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error('no data chunk in ' + path);
}

async function runLLM(text) {
  const model = new inference.LLM({ model: 'openai/gpt-4.1-mini' });
  const errors = [];
  model.on('error', (e) => errors.push(e));
  const chatCtx = new llm.ChatContext();
  chatCtx.addMessage({ role: 'user', content: text });
  let reply = '';
  try {
    const stream = model.chat({ chatCtx, connOptions: noRetry });
    for await (const chunk of stream) reply += chunk.delta?.content ?? '';
  } catch (e) {
    errors.push({ error: e });
  }
  const e = errors.map((x) => x.error ?? x).find((x) => x);
  if (e) {
    out({ error: { name: e.name, status: e.statusCode ?? null, body: e.body ?? null, message: String(e.message) } });
    return;
  }
  out({ text: reply });
}

async function runSTT(wav, finals) {
  const { pcm, rate } = readWav(wav);
  const model = new inference.STT({ model: 'deepgram/nova-3', language: 'en', sampleRate: rate });
  const stream = model.stream({ connOptions: noRetry });
  const got = { finals: [], events: [] };
  const reader = (async () => {
    for await (const ev of stream) {
      got.events.push(ev.type);
      if (ev.type === stt.SpeechEventType.FINAL_TRANSCRIPT) got.finals.push(ev.alternatives?.[0]?.text ?? '');
      if (got.finals.length >= finals) return;
    }
  })();
  // 50 ms frames at real-time pace, and never a flush or an end of input:
  // a final transcript must come from the gateway's own endpointing.
  const step = rate / 20;
  for (let i = 0; i < pcm.length && got.finals.length < finals; i += step) {
    const part = pcm.slice(i, i + step);
    stream.pushFrame(new AudioFrame(part, rate, 1, part.length));
    await sleep(50);
  }
  await Promise.race([reader, sleep(10000)]);
  stream.close(); // sends session.close; nothing may come back after it
  await sleep(1500); // time for a late message to crash the client
  out(got);
}

async function runTTS(text) {
  const model = new inference.TTS({ model: 'cartesia/sonic-2', language: 'en' });
  const errors = [];
  model.on('error', (e) => errors.push(e));
  const stream = model.stream({ connOptions: noRetry });
  stream.pushText(text);
  stream.flush();
  stream.endInput();
  let samples = 0;
  let rate = 0;
  let peak = 0;
  for await (const ev of stream) {
    if (ev === Symbol.for('lk.tts.end_of_stream') || !ev.frame) continue;
    samples += ev.frame.samplesPerChannel;
    rate = ev.frame.sampleRate;
    for (const v of ev.frame.data) peak = Math.max(peak, Math.abs(v));
  }
  await model.close();
  out({ samples, rate, peak, errors: errors.map((e) => String(e.error?.message ?? e)) });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'llm') await runLLM(args[0]);
else if (mode === 'stt') await runSTT(args[0], Number(args[1] ?? 1));
else if (mode === 'tts') await runTTS(args[0]);
else throw new Error('mode: llm, stt or tts');
process.exit(0);
