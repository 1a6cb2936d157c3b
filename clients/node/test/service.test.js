// Runs against a real sidecar: SIDECAR_URL (tests/integration/test_node_client.py starts one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { ImageStorageService, SidecarError } from '../index.js';

const sidecar = new ImageStorageService({ baseUrl: process.env.SIDECAR_URL });

// A real 1x1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64');

function fields(overrides = {}) {
  return {
    gameCode: 'NODE1', gameId: randomUUID(), roundId: randomUUID(), roundNumber: 1,
    playerId: randomUUID(), submissionId: randomUUID(),
    completedSentence: `A node test ${randomUUID()}`, artStyle: 'pixel', aiService: 'dall-e-3',
    ...overrides,
  };
}

test('saveImage stores, a retry returns the same record, and the round lists it', async () => {
  const input = fields();
  const record = await sidecar.saveImage(PNG, input);
  assert.equal(record.content_type, 'image/png');
  const retry = await sidecar.saveImage(PNG, input);
  assert.equal(retry.image_id, record.image_id);
  const round = await sidecar.listRound('NODE1', 1);
  assert.ok(round.some((image) => image.image_id === record.image_id));
  const bytes = Buffer.from(await (await fetch(process.env.SIDECAR_URL + record.image_url)).arrayBuffer());
  assert.deepEqual(bytes, PNG);
});

test('getOrGenerate pays once for one prompt across games', async () => {
  let calls = 0;
  const generate = async () => { calls += 1; return PNG; };
  const sentence = `A shared prompt ${randomUUID()}`;
  const first = await sidecar.getOrGenerate(fields({ gameCode: 'NODE2', completedSentence: sentence }), generate);
  const second = await sidecar.getOrGenerate(
    fields({ gameCode: 'NODE3', completedSentence: `  ${sentence.toUpperCase()} ` }), generate);
  assert.equal(calls, 1);
  assert.equal(first.reused, false);
  assert.equal(second.reused, true);
  assert.equal(second.record.reused_from, first.record.image_id);
});

test('errors carry the status, the code and the field', async () => {
  await assert.rejects(
    sidecar.saveImage(PNG, fields({ gameCode: '../etc' })),
    (error) => error instanceof SidecarError && error.status === 400 && error.field === 'game_code');
  await assert.rejects(
    sidecar.saveImage(Buffer.from('GIF89a'), fields()),
    (error) => error.status === 415);
  await assert.rejects(
    sidecar.getPlayerImage('NODE1', 1, randomUUID()),
    (error) => error.status === 404 && error.code === 'not_found');
});

test('purgePlayer removes that player only', async () => {
  const leaving = await sidecar.saveImage(PNG, fields({ gameCode: 'NODE4' }));
  const staying = await sidecar.saveImage(PNG, fields({ gameCode: 'NODE4' }));
  const summary = await sidecar.purgePlayer('NODE4', leaving.player_id);
  assert.equal(summary.images_deleted, 1);
  const left = await sidecar.listGame('NODE4');
  assert.deepEqual(left.map((image) => image.image_id), [staying.image_id]);
});

test('the sidecar hashes every published vector of both versions as the vectors file says', async () => {
  const vectors = JSON.parse(
    readFileSync(new URL('../../../tests/vectors/prompt_hash.json', import.meta.url), 'utf8'));
  assert.deepEqual(new Set(vectors.map((vector) => vector.version)), new Set(['v1', 'v2']));
  for (const vector of vectors) {
    // An empty style hashes as none; the API takes none as null (or leaves it out).
    const found = await sidecar.lookupPrompt(vector.prompt, vector.art_style || null,
      { model: vector.model, size: vector.size });
    assert.equal(found.promptHash, vector.prompt_hash, JSON.stringify(vector));
  }
});

test('a generator that throws gives the claim back: the waiting caller gets it within a second', async () => {
  let calls = 0;
  const generate = async () => {
    calls += 1;
    if (calls === 1) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      throw new Error('the AI service timed out');
    }
    return PNG;
  };
  const sentence = `A failing prompt ${randomUUID()}`;
  const first = sidecar.getOrGenerate(fields({ gameCode: 'NODE5', completedSentence: sentence }), generate);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the first holds the claim
  const started = Date.now();
  const second = sidecar.getOrGenerate(fields({ gameCode: 'NODE6', completedSentence: sentence }), generate);
  await assert.rejects(first, /timed out/);
  const { reused } = await second;
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  assert.equal(reused, false);
  assert.equal(calls, 2);
});

test('the deadline aborts the generator and frees the prompt', async () => {
  let sawAbort = false;
  const generate = (prompt, { signal }) => new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => { sawAbort = true; reject(signal.reason); });
  });
  const sentence = `A slow prompt ${randomUUID()}`;
  // AbortSignal.timeout does not keep Node running (a game server's listening socket does).
  const alive = setInterval(() => {}, 1000);
  try {
    await assert.rejects(
      sidecar.getOrGenerate(fields({ completedSentence: sentence }), generate, { deadlineMs: 200 }),
      (error) => error.name === 'TimeoutError');
  } finally {
    clearInterval(alive);
  }
  assert.ok(sawAbort);
  const after = await sidecar.lookupPrompt(sentence, 'pixel');
  assert.equal(after.status, 'miss'); // not pending on a dead claim
});

test('retrying the same fields is not a reuse of the player\'s own picture', async () => {
  const input = fields();
  const generate = async () => PNG;
  const first = await sidecar.getOrGenerate(input, generate);
  const again = await sidecar.getOrGenerate(input, generate);
  assert.equal(again.record.image_id, first.record.image_id);
  assert.equal(again.reused, false);
});

// A stand-in for what sits between the game server and the sidecar: a proxy that fails.
async function flakyServer(answers) {
  const seen = [];
  const server = createServer((request, response) => {
    seen.push(request.headers['x-request-id']);
    const [status, type, body, headers = {}] = answers[Math.min(seen.length, answers.length) - 1];
    response.writeHead(status, { 'Content-Type': type, ...headers });
    response.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, seen, url: `http://127.0.0.1:${server.address().port}` };
}

test('502s are retried with backoff and an HTML error page becomes a SidecarError', async () => {
  const html = '<html><body>Bad gateway</body></html>';
  const { server, seen, url } = await flakyServer([
    [502, 'text/html', html], [503, 'text/html', html, { 'Retry-After': '0' }],
    [404, 'text/html', html],
  ]);
  try {
    const client = new ImageStorageService({ baseUrl: url, retries: 3 });
    await assert.rejects(client.listGame('ABCD'), (error) => error instanceof SidecarError
      && error.status === 404 && error.code === 'http_error' && error.requestId === seen[0]);
    assert.equal(seen.length, 3); // 502, 503, then the 404 that is never retried
    assert.equal(new Set(seen).size, 1); // one request id for the call
  } finally {
    server.close();
  }
});

test('a refused connection (a sidecar restarting) is retried until it answers', async () => {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  probe.close();
  const late = createServer((request, response) => {
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end('{"images": []}');
  });
  setTimeout(() => late.listen(port, '127.0.0.1'), 300);
  try {
    const client = new ImageStorageService({ baseUrl: `http://127.0.0.1:${port}`, retries: 8 });
    assert.deepEqual(await client.listGame('ABCD'), []);
  } finally {
    late.close();
  }
});

test('a caller\'s AbortSignal stops a call at once', async () => {
  const controller = new AbortController();
  const waiting = sidecar.lookupPrompt(`A waited prompt ${randomUUID()}`, null, { waitMs: 0 });
  await waiting; // takes the claim, so the next lookup waits
  const sentence = `Another ${randomUUID()}`;
  await sidecar.lookupPrompt(sentence, null);
  const pending = sidecar.lookupPrompt(sentence, null, { waitMs: 20000, signal: controller.signal });
  setTimeout(() => controller.abort(new Error('the round ended')), 100);
  await assert.rejects(pending, /the round ended/);
});

// Another real PNG (2x1), taken down below: no other test may share its bytes.
const DOOMED_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAD0lEQVR4nGPkOiHHwMAAAASqAPLI3P69AAAAAElFTkSuQmCC', 'base64');

test('every endpoint has a method: register in a lookup, entries, stats, takedown, cleanup', async () => {
  const sentence = `A whole-API prompt ${randomUUID()}`;
  const original = await sidecar.saveImage(
    DOOMED_PNG, fields({ gameCode: 'NODE7', completedSentence: sentence }));
  const { completedSentence, ...register } = fields({ gameCode: 'NODE8' });
  const found = await sidecar.lookupPrompt(sentence, 'pixel', { register });
  assert.equal(found.status, 'hit');
  assert.equal(found.registered, true);
  assert.equal(found.image.reused_from, original.image_id);
  assert.equal(found.image.game_code, 'NODE8');

  const entry = await sidecar.getCacheEntry(found.promptHash);
  assert.equal(entry.hit_count, 2);
  const stats = await sidecar.getStats({ days: 1 });
  assert.ok(stats.images_per_day[0].reused >= 1);

  const takedown = await sidecar.takeDown(
    original.sha256, { reason: 'a node test', similar: true });
  assert.equal(takedown.images_deleted, 2);
  assert.deepEqual(takedown.lookalike_image_ids, []);
  await assert.rejects(sidecar.getCacheEntry(found.promptHash), (error) => error.status === 404);
  await assert.rejects(sidecar.saveImage(DOOMED_PNG, fields()),
    (error) => error.code === 'blocked_content');

  const cleanup = await sidecar.runCleanup();
  assert.ok(['success', 'skipped'].includes(cleanup.outcome));
  assert.deepEqual(await sidecar.listGame('NODE7', { gameId: original.game_id }), []);
});

test('the judge\'s pick and a share link: the gallery shows the round, revoked it is gone', async () => {
  const input = fields({ gameCode: 'NODESHARE' });
  const record = await sidecar.saveImage(PNG, input);
  const winner = await sidecar.pickWinner('NODESHARE', 1, input.playerId, { gameId: input.gameId });
  assert.equal(winner.image_id, record.image_id);
  const [listed] = await sidecar.listRound('NODESHARE', 1, { gameId: input.gameId });
  assert.equal(listed.is_winner, true);
  const share = await sidecar.createShare('NODESHARE', { gameId: input.gameId, roundNumber: 1 });
  const page = await fetch(share.url);
  assert.equal(page.status, 200);
  assert.match(await page.text(), new RegExp(input.completedSentence));
  await sidecar.revokeShare(share.share_id);
  assert.equal((await fetch(share.url)).status, 404);
  await assert.rejects(sidecar.createShare('NODEEMPTY'),
    (error) => error.status === 404 && error.code === 'not_found' && error.field === 'game_code');
});
