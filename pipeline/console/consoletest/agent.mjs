// agent.mjs: an agents-js 1.9.0 voice agent for console mode, with one tool.
// It is what the console tests run, and a starting point for your own:
//
//   voicetui console -- node agent.mjs
//
// voicetui appends `console --connect-addr 127.0.0.1:PORT` and, by default,
// points LIVEKIT_INFERENCE_URL (with LIVEKIT_API_KEY/SECRET) at its embedded
// gateway, so STT, LLM and TTS never leave the machine. @livekit/agents and
// @livekit/agents-plugin-silero must be installed beside this file.
//
// Environment:
//   AGENT_GREETING      if set, the agent says it when the session starts
//   AGENT_INSTRUCTIONS  the LLM instructions (default: a terse assistant)
//   AGENT_TOOL_FAILS    if set, lookup_order fails (a tool error is shown)
import { fileURLToPath } from 'node:url';
import { ServerOptions, cli, defineAgent, inference, llm, voice } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import { z } from 'zod';

// agents-js's worker processes log an unhandled rejection and go on; its
// console mode runs the session in this process, where Node.js exits on
// one. agents-js 1.9.0 raises one itself (a rejection without a reason)
// when the user interrupts a reply still being synthesized, so do as its
// workers do.
process.on('unhandledRejection', (reason) => console.error('unhandled rejection (ignored, as agents-js workers do):', reason));

const lookupOrder = llm.tool({
  description: 'Look up an order by its number and say where it is.',
  parameters: z.object({ order: z.string().describe('the order number') }),
  execute: async ({ order }) => {
    if (process.env.AGENT_TOOL_FAILS) throw new Error(`order ${order}: the order system is down`);
    return `order ${order} shipped on Monday`;
  },
});

export default defineAgent({
  prewarm: async (proc) => {
    proc.userData.vad = await silero.VAD.load(); // the model ships inside the plugin: offline
  },
  entry: async (ctx) => {
    const session = new voice.AgentSession({
      vad: ctx.proc.userData.vad,
      stt: new inference.STT({ model: 'deepgram/nova-3', language: 'en' }),
      llm: new inference.LLM({ model: 'openai/gpt-4.1-mini' }),
      tts: new inference.TTS({ model: 'cartesia/sonic-2', language: 'en' }),
      // VAD-only turn taking: the defaults open the cloud-only /eot and
      // /bargein sockets.
      turnHandling: { turnDetection: 'vad', interruption: { mode: 'vad' } },
    });
    await session.start({
      agent: new voice.Agent({
        instructions: process.env.AGENT_INSTRUCTIONS || 'You are a terse assistant.',
        tools: { lookup_order: lookupOrder },
      }),
      room: ctx.room,
    });
    if (process.env.AGENT_GREETING) session.say(process.env.AGENT_GREETING);
  },
});

cli.runApp(new ServerOptions({ agent: fileURLToPath(import.meta.url) }));
