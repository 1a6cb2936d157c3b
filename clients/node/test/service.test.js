// Runs against a real sidecar: SIDECAR_URL (tests/integration/test_node_client.py starts one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
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
