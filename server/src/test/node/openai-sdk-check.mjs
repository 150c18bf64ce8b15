// The official OpenAI Node SDK against this server (run by OpenAiNodeSdkTest when node and node_modules are present):
//   cd server/src/test/node && npm install && BASE_URL=http://127.0.0.1:8080/v1 API_KEY=... node openai-sdk-check.mjs
// Exits non-zero with a message on the first failed check.
import OpenAI, { AuthenticationError } from "openai";

const baseURL = process.env.BASE_URL, apiKey = process.env.API_KEY, model = process.env.MODEL ?? "tiny";
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

// 1. response_format json_schema (strict): the content parses and has the schema's shape
const schema = {
  type: "object", additionalProperties: false, required: ["city", "count", "open"],
  properties: { city: { type: "string", enum: ["Paris", "Oslo", "Lima"] }, count: { type: "integer" }, open: { type: "boolean" } },
};
for (const stream of [false, true]) {
  const args = {
    model, messages: [{ role: "user", content: "Pick a city as JSON" }], max_tokens: 200, temperature: 1,
    response_format: { type: "json_schema", json_schema: { name: "pick", strict: true, schema } },
  };
  let content = "";
  if (stream) {
    const s = await client.chat.completions.create({ ...args, stream: true, stream_options: { include_usage: true } });
    let usage = null;
    for await (const chunk of s) {
      if (chunk.choices.length > 0) content += chunk.choices[0].delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    if (!usage || usage.completion_tokens <= 0) fail("no usage in the last chunk");
  } else {
    const r = await client.chat.completions.create(args);
    if (!r.system_fingerprint) fail("no system_fingerprint");
    content = r.choices[0].message.content;
  }
  let v;
  try { v = JSON.parse(content); } catch (e) { fail(`content is not JSON (stream=${stream}): ${content}`); }
  if (!schema.properties.city.enum.includes(v.city) || !Number.isInteger(v.count) || typeof v.open !== "boolean"
      || Object.keys(v).length !== 3) fail(`content does not match the schema: ${content}`);
  console.log(`json_schema (stream=${stream}): ${content}`);
}

// 2. tool_choice "required": a tool call whose arguments parse
const tools = [{ type: "function", function: { name: "get_weather", description: "weather in a city",
  parameters: { type: "object", properties: { city: { type: "string", enum: ["Paris", "Oslo"] }, days: { type: "integer" } },
    required: ["city", "days"], additionalProperties: false } } }];
const t = await client.chat.completions.create({ model, messages: [{ role: "user", content: "Weather?" }], tools, tool_choice: "required", temperature: 1 });
const choice = t.choices[0];
if (choice.finish_reason !== "tool_calls" || !choice.message.tool_calls?.length) fail("no tool call: " + JSON.stringify(choice));
const call = choice.message.tool_calls[0];
const a = JSON.parse(call.function.arguments);
if (call.function.name !== "get_weather" || !["Paris", "Oslo"].includes(a.city) || !Number.isInteger(a.days)) fail("bad call: " + JSON.stringify(call));
console.log(`tool_choice required: ${call.function.name}(${call.function.arguments})`);

// 3. without the key: 401, seen by the SDK as AuthenticationError
try {
  await new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 }).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
  fail("a wrong key was accepted");
} catch (e) {
  if (!(e instanceof AuthenticationError) || e.status !== 401) fail("expected a 401 AuthenticationError, got " + e);
  console.log(`wrong key: ${e.status} ${e.error?.code ?? ""}`);
}
console.log("OK");
