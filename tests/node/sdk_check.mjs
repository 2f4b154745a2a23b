// Drives the API with the official `openai` Node SDK and prints what it saw as one JSON object.
//
// Run by tests/e2e/test_node_sdk.py, which owns the assertions: this script only records what the
// SDK returned or raised, so that a wrong answer shows up as a failed assertion with the value in
// it. Every section is caught on its own; a section that throws records {"error": ...}.
//
// Usage: OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 OPENAI_API_KEY=sk-... node sdk_check.mjs

import OpenAI from "openai";
import { VERSION } from "openai/version";

const CHAT_MODEL = "tiny-chat";
const EMBEDDING_MODEL = "all-minilm-l6-v2";
// Non-ASCII on purpose: the SDK's SSE decoder must not split multi-byte characters.
const QUESTIONS = [
  "What is the capital of France?",
  "Count from 1 to 10",
  "Repeat after me: café crème 日本 🚀",
];
const EMBEDDING_TEXTS = ["A cat sits on the mat.", "A cat sits on the mat.", "Quarterly GPU revenue grew."];

const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY;
if (!baseURL || !apiKey) {
  console.error("OPENAI_BASE_URL and OPENAI_API_KEY must be set");
  process.exit(2);
}

// No retries: a 5xx or a refused connection must reach the test, not be papered over.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120_000 });

function describeError(err) {
  if (err instanceof OpenAI.APIError) {
    return {
      class: err.constructor.name,
      api_error: true,
      status: err.status ?? null,
      type: err.type ?? null,
      code: err.code ?? null,
      param: err.param ?? null,
      message: err.message,
    };
  }
  return { class: err?.constructor?.name ?? typeof err, api_error: false, message: String(err) };
}

async function section(run) {
  try {
    return await run();
  } catch (err) {
    return { error: describeError(err) };
  }
}

// Runs a request that should fail and records how the SDK raised it.
async function refusal(run) {
  try {
    const value = await run();
    return { raised: false, value };
  } catch (err) {
    return { raised: true, ...describeError(err) };
  }
}

async function chatPair(question) {
  const messages = [{ role: "user", content: question }];
  const full = await client.chat.completions.create({ model: CHAT_MODEL, messages, temperature: 0 });
  const stream = await client.chat.completions.create({
    model: CHAT_MODEL,
    messages,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const deltas = [];
  const finishReasons = [];
  const ids = new Set();
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    ids.add(chunk.id);
    for (const choice of chunk.choices) {
      deltas.push(choice.delta?.content ?? "");
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return {
    question,
    chat: {
      object: full.object,
      content: full.choices[0].message.content,
      role: full.choices[0].message.role,
      finish_reason: full.choices[0].finish_reason,
      usage: full.usage,
    },
    stream: { text: deltas.join(""), finish_reasons: finishReasons, chunks, ids: [...ids], usage },
  };
}

async function legacyCompletions() {
  const request = { model: CHAT_MODEL, prompt: "Once upon a time", max_tokens: 16, temperature: 0 };
  const full = await client.completions.create(request);
  const stream = await client.completions.create({ ...request, stream: true });
  const pieces = [];
  const finishReasons = [];
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      pieces.push(choice.text);
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
  }
  return {
    object: full.object,
    text: full.choices[0].text,
    finish_reason: full.choices[0].finish_reason,
    usage: full.usage,
    stream: { text: pieces.join(""), finish_reasons: finishReasons },
  };
}

async function embeddings() {
  // No encoding_format: this SDK then asks for base64 and decodes it itself.
  const defaulted = await client.embeddings.create({ model: EMBEDDING_MODEL, input: EMBEDDING_TEXTS });
  const floats = await client.embeddings.create({
    model: EMBEDDING_MODEL,
    input: EMBEDDING_TEXTS[0],
    encoding_format: "float",
  });
  return {
    object: defaulted.object,
    model: defaulted.model,
    indexes: defaulted.data.map((item) => item.index),
    vectors: defaulted.data.map((item) => Array.from(item.embedding)),
    float_vector: Array.from(floats.data[0].embedding),
    usage: defaulted.usage,
  };
}

async function models() {
  const listed = [];
  for await (const model of client.models.list()) listed.push({ id: model.id, object: model.object });
  return { models: listed };
}

async function errors() {
  const hi = [{ role: "user", content: "Hi" }];
  const badKey = new OpenAI({ baseURL, apiKey: "sk-not-a-key", maxRetries: 0 });
  return {
    bad_key: await refusal(() => badKey.chat.completions.create({ model: CHAT_MODEL, messages: hi })),
    bad_parameter: await refusal(() =>
      client.chat.completions.create({ model: CHAT_MODEL, messages: hi, max_tokens: 2 ** 31 }),
    ),
    unknown_model: await refusal(() =>
      client.chat.completions.create({ model: "no-such-model", messages: hi }),
    ),
  };
}

const result = {
  sdk_version: VERSION,
  node_version: process.version,
  chat: [],
  completions: await section(legacyCompletions),
  embeddings: await section(embeddings),
  models: await section(models),
  errors: await section(errors),
};
for (const question of QUESTIONS) result.chat.push(await section(() => chatPair(question)));

process.stdout.write(JSON.stringify(result) + "\n");
