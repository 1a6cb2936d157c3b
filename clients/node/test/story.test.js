// The story's ImageStorageService section, coded as the story reads: the seven methods with their
// names and argument order, configured from the environment (IMAGE_SIDECAR_URL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import ImageStorageService, { promptHash } from '../src/services/ImageStorageService.js';

// Two real 2x2 PNGs of different colours; no other test uses these bytes.
const RED = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGM8ISfHwMDAxMDAwMDAAAANBAEIfXHKZgAAAABJRU5ErkJggg==', 'base64');
const GREEN = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGOUOyHHwMDAxMDAwMDAAAAMWgEIjckz5wAAAABJRU5ErkJggg==', 'base64');

test('the story flow: check the cache, save, describe, read back, count a hit, clean up', async () => {
  const imageStorageService = new ImageStorageService();
  const gameCode = `story${Date.now() % 100000}`;
  const roundId = randomUUID();
  const playerId = randomUUID();
  const sentence = `My teacher secretly ${randomUUID()}`;
  const style = 'watercolor';

  const hash = promptHash(sentence, style);
  assert.equal(await imageStorageService.checkPromptCache(hash), null);
  const url = await imageStorageService.saveImage(RED, gameCode, roundId, playerId);
  assert.match(url, /\/generated-images\/game-.*\/round-1\/player-.*\.png$/);
  const described = await imageStorageService.cacheImageMetadata(playerId, roundId, sentence, url, style);
  assert.equal(described.completed_sentence, sentence);
  assert.equal(described.prompt_hash, hash);

  const mine = await imageStorageService.getImage(gameCode, roundId, playerId);
  assert.equal(mine.image_url, url);
  const round = await imageStorageService.getGameImages(gameCode, roundId);
  assert.deepEqual(round.map((image) => image.player_id), [playerId]);

  const cached = await imageStorageService.checkPromptCache(hash);
  assert.equal(cached.image.image_url, url);
  const counted = await imageStorageService.recordCacheHit(hash);
  assert.equal(counted.hit_count, cached.hit_count + 1);

  const summary = await imageStorageService.cleanupExpiredImages();
  assert.equal(typeof summary.images_deleted, 'number');
  assert.notEqual(await imageStorageService.getImage(gameCode, roundId, playerId), null);
});

test('the story\'s rounds follow each other in one game, and a new instance finds them', async () => {
  const gameCode = `story${randomUUID().slice(0, 8)}`;
  const [first, second] = [randomUUID(), randomUUID()];
  const [alice, bob] = [randomUUID(), randomUUID()];
  const service = new ImageStorageService();
  const url1 = await service.saveImage(RED, gameCode, first, alice);
  // Another game-server process: nothing remembered, the sidecar says which game and round.
  const restarted = new ImageStorageService();
  const url2 = await restarted.saveImage(GREEN, gameCode, second, bob);
  const described = await restarted.cacheImageMetadata(alice, first, 'A first round', url1, 'ink');
  assert.equal(described.round_number, 1);
  const game = await restarted.getGameImages(gameCode);
  assert.deepEqual(game.map((image) => [image.round_number, image.image_url]),
    [[1, url1], [2, url2]]);
  assert.equal(new Set(game.map((image) => image.game_id)).size, 1);
});

test('saving again is one picture; other bytes for the player\'s round are a 409', async () => {
  const service = new ImageStorageService();
  const [gameCode, roundId, playerId] = ['STORYRETRY', randomUUID(), randomUUID()];
  const url = await service.saveImage(RED, gameCode, roundId, playerId, { gameId: randomUUID() });
  const mine = await service.getImage(gameCode, roundId, playerId);
  assert.equal(await service.saveImage(RED, gameCode, roundId, playerId,
    { gameId: mine.game_id }), url);
  await assert.rejects(
    service.saveImage(GREEN, gameCode, roundId, playerId, { gameId: mine.game_id }),
    (error) => error.status === 409 && error.field === 'player_id');
  await assert.rejects(
    service.cacheImageMetadata(randomUUID(), roundId, 'Not mine', url, null),
    (error) => error.status === 409 && error.field === 'url');
});

test('recordCacheHit with a player registers the cached picture in their round', async () => {
  const service = new ImageStorageService();
  const sentence = `A shared story prompt ${randomUUID()}`;
  const [gameCode, roundId] = [`storyhit${randomUUID().slice(0, 6)}`, randomUUID()];
  const url = await service.saveImage(GREEN, gameCode, roundId, randomUUID(),
    { completedSentence: sentence });
  const hash = promptHash(sentence, null);
  const player = randomUUID();
  const record = await service.recordCacheHit(hash, { gameCode, roundId, playerId: player });
  assert.equal(record.player_id, player);
  assert.notEqual(record.image_url, url);
  assert.equal((await service.getGameImages(gameCode, roundId)).length, 2);
});

// docs/node-client.md's flow, as a game server codes it for each player of a round.
async function pictureFor(service, gameCode, roundId, playerId, sentence, style, bytes) {
  const player = { gameCode, roundId, playerId };
  const cached = await service.checkPromptCache(promptHash(sentence, style), player);
  if (cached) {
    const record = await service.recordCacheHit(cached.prompt_hash, player);
    return record.image_url;
  }
  const url = await service.saveImage(bytes, gameCode, roundId, playerId);
  await service.cacheImageMetadata(playerId, roundId, sentence, url, style);
  return url;
}

test('the documented flow gives every player of a round a picture, a repeated sentence too',
  async () => {
    const service = new ImageStorageService();
    const gameCode = `trio${randomUUID().slice(0, 6)}`;
    const roundId = randomUUID();
    const [ana, bo, cy] = [randomUUID(), randomUUID(), randomUUID()];
    const repeated = `A cat riding a skateboard ${randomUUID()}`;
    const urls = [
      await pictureFor(service, gameCode, roundId, ana, repeated, 'ink', RED),
      await pictureFor(service, gameCode, roundId, bo, `Something else ${randomUUID()}`, 'ink', GREEN),
      await pictureFor(service, gameCode, roundId, cy, repeated, 'ink', RED), // a cache hit
    ];
    assert.equal(new Set(urls).size, 3); // Cy's picture is Cy's own URL, not Ana's
    const round = await service.getGameImages(gameCode, roundId);
    assert.deepEqual(new Set(round.map((image) => image.player_id)), new Set([ana, bo, cy]));
    const cys = round.find((image) => image.player_id === cy);
    assert.equal(cys.image_url, urls[2]);
    assert.equal(cys.reused_from, round.find((image) => image.player_id === ana).image_id);
    const winner = await service.pickWinner(gameCode, 1, cy, { gameId: cys.game_id });
    assert.equal(winner.player_id, cy);
    const share = await service.createShare(gameCode, { gameId: cys.game_id });
    const zip = Buffer.from(await (await fetch(new URL(`${share.url}/images.zip`,
      service.baseUrl))).arrayBuffer());
    // A zip's central directory: one entry header (PK\x01\x02) a picture.
    assert.equal(zip.toString('latin1').split('PK\x01\x02').length - 1, 3);
  });

test('a hit counted without a player is counted, and the client warns once', async () => {
  const service = new ImageStorageService();
  const sentence = `Counted alone ${randomUUID()}`;
  await service.saveImage(RED, `warn${randomUUID().slice(0, 6)}`, randomUUID(), randomUUID(),
    { completedSentence: sentence });
  const warnings = [];
  const listen = (warning) => warnings.push(warning.code);
  process.on('warning', listen);
  try {
    const entry = await service.recordCacheHit(promptHash(sentence, null));
    await service.recordCacheHit(promptHash(sentence, null));
    assert.equal(typeof entry.hit_count, 'number');
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listen);
  }
  assert.deepEqual(warnings, ['IMAGE_SIDECAR_HIT_WITHOUT_PLAYER']);
});

test('a CommonJS game server can require() the story\'s module', () => {
  const required = createRequire(import.meta.url)('../src/services/ImageStorageService.js');
  assert.equal(required.default, ImageStorageService);
  assert.equal(required.ImageStorageService, ImageStorageService);
});
