// The official OpenAI client library (npm `openai`) against `vela serve`'s HTTP API.
// Run by test_http_openai_client: VELA_HTTP_BASE (http://127.0.0.1:PORT/v1),
// VELA_API_KEY, VELA_OPENAI_MODULE (the installed package), VELA_EXPECTED (JSON:
// {prompt, max_tokens, text}: the ZeroMQ client's greedy text for that prompt).
// Prints one line per check; exits non-zero when any failed.
const OpenAI = require(process.env.VELA_OPENAI_MODULE);
const base = process.env.VELA_HTTP_BASE;
const key = process.env.VELA_API_KEY;
const expected = JSON.parse(process.env.VELA_EXPECTED);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 60000 });

let failures = 0;
function check(cond, name, detail) {
  console.log(`${cond ? 'ok' : 'FAILED'} - ${name}${cond || detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
  if (!cond) failures++;
}
async function expectError(name, status, fn, param) {
  try {
    await fn();
    check(false, name, 'no error');
  } catch (e) {
    check(e instanceof OpenAI.APIError && e.status === status && (param === undefined || e.param === param),
          name, { status: e.status, param: e.param, message: e.message });
  }
}

(async () => {
  // Completions, greedy: the ZeroMQ client's text.
  const c = await client.completions.create({
    model: 'demo', prompt: expected.prompt, max_tokens: expected.max_tokens, temperature: 0, ignore_eos: true });
  check(c.choices[0].text === expected.text, 'completion text equals the ZeroMQ client\'s', c.choices[0].text);
  check(c.usage.completion_tokens === expected.max_tokens, 'completion usage', c.usage);

  // Streamed completion, same text.
  let streamed = '';
  for await (const chunk of await client.completions.create({
    model: 'demo', prompt: expected.prompt, max_tokens: expected.max_tokens, temperature: 0, ignore_eos: true, stream: true }))
    streamed += chunk.choices.length ? chunk.choices[0].text : '';
  check(streamed === expected.text, 'streamed completion equals the ZeroMQ client\'s', streamed);

  // Chat streaming with usage.
  const stream = await client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'Write a function' }], max_tokens: 12, temperature: 0,
    stream: true, stream_options: { include_usage: true } });
  let content = '', role = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      if (ch.delta.role) role = ch.delta.role;
      if (ch.delta.content) content += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check(role === 'assistant' && chunks > 2, 'chat stream: role, several chunks', { role, chunks });
  check(usage && usage.completion_tokens > 0 && usage.completion_tokens <= 12 &&
        usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, 'chat stream: usage chunk', usage);
  check(finish === 'length' || finish === 'stop', 'chat stream: finish_reason', finish);
  const chat = await client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'Write a function' }], max_tokens: 12, temperature: 0 });
  check(chat.choices[0].message.content === content, 'chat: unstreamed equals streamed', chat.choices[0].message.content);

  // n > 1.
  const many = await client.completions.create({ model: 'demo', prompt: 'def ', max_tokens: 8, n: 3, temperature: 1, seed: 5 });
  check(many.choices.length === 3 && many.choices.map((x) => x.index).join() === '0,1,2', 'n=3: three choices', many.choices.length);
  check(new Set(many.choices.map((x) => x.text)).size > 1, 'n=3: seeded choices differ', many.choices.map((x) => x.text));
  check(many.usage.completion_tokens === 24, 'n=3: usage counts every choice', many.usage);

  // Logprobs.
  const lp = await client.completions.create({ model: 'demo', prompt: 'import ', max_tokens: 5, temperature: 0, logprobs: 2 });
  const l = lp.choices[0].logprobs;
  check(l && l.tokens.length === 5 && l.token_logprobs.every((x) => x <= 0) && l.top_logprobs.every((t) => Object.keys(t).length <= 2 && Object.keys(t).length >= 1)
        && l.tokens.join('') === lp.choices[0].text, 'completion logprobs', l);
  const clp = await client.chat.completions.create({
    model: 'demo', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
  const cl = clp.choices[0].logprobs;
  check(cl && cl.content.length === clp.usage.completion_tokens && cl.content.every((t) => t.top_logprobs.length === 3 && t.logprob <= 0),
        'chat logprobs', cl);

  // Errors.
  await expectError('bad model name: 404', 404, () => client.completions.create({ model: 'gpt-4', prompt: 'a', max_tokens: 2 }), 'model');
  const keyless = new OpenAI({ baseURL: base, apiKey: 'wrong-key', maxRetries: 0 });
  await expectError('wrong key: 401', 401, () => keyless.completions.create({ model: 'demo', prompt: 'a', max_tokens: 2 }));
  await expectError('oversized body: 413', 413, () => client.completions.create({ model: 'demo', prompt: 'x'.repeat(200000), max_tokens: 2 }));
  await expectError('unknown parameter named: 400', 400, () => client.completions.create({ model: 'demo', prompt: 'a', max_tokens: 2, best_of: 2 }), 'best_of');
  await expectError('bad value named: 400', 400, () => client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'a' }], temperature: -3 }), 'temperature');

  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === 'demo', 'models.list', models.data);
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log('FAILED - unexpected exception: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
