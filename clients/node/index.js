// ImageStorageService: the game server's side of the image sidecar's HTTP API.
// No dependencies: Node 22 has fetch, FormData and Blob built in. When the game server uses
// OpenTelemetry (@opentelemetry/api, an optional peer), each call carries the active span's
// W3C `traceparent`, so one trace runs from the game server's handler into the sidecar.

import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

// Loaded synchronously (no top-level await: a CommonJS game server require()s this module).
// The API keeps its state on globalThis, so this copy sees the game server's tracer and context.
let otel = null;
try {
  otel = createRequire(import.meta.url)('@opentelemetry/api');
} catch {
  // not installed: calls carry no traceparent
}

/** `traceparent` (and `tracestate`) of the active span, as the configured propagator writes
 * them, else built from the span itself; none outside a span or without OpenTelemetry. */
function traceHeaders() {
  if (!otel) return {};
  const carrier = {};
  otel.propagation.inject(otel.context.active(), carrier);
  if (carrier.traceparent) return carrier;
  const span = otel.trace.getActiveSpan()?.spanContext();
  if (!span || !otel.trace.isSpanContextValid(span)) return {};
  const flags = (span.traceFlags & otel.TraceFlags.SAMPLED) ? '01' : '00';
  return { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
}

export { canonicalText, promptHash } from './prompt-hash.js';

/**
 * A failed call: the HTTP status (0 when no answer came), the contract's error code, the
 * message, the field at fault, and the request id to find it in the sidecar's log.
 */
export class SidecarError extends Error {
  constructor(status, code, message, field, requestId) {
    super(message);
    this.name = 'SidecarError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.requestId = requestId;
  }
}

// Answers worth another try: the sidecar restarting or overloaded, a proxy in between.
const RETRIED_STATUSES = new Set([502, 503, 504]);
// Failures where the request surely never reached the sidecar: safe to retry any call.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

export class ImageStorageService {
  #described = new Map(); // image URL -> image id of pictures this instance saved undescribed
  #rounds = new Map(); // "code/roundId" -> { gameId, roundNumber } found for the story's calls
  #players = new Map(); // prompt hash -> the player checkPromptCache looked it up for
  #warnedHitWithoutPlayer = false;

  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] the sidecar (default: IMAGE_SIDECAR_URL, else
   *   http://127.0.0.1:8080)
   * @param {string} [options.token] sent on every write (default: IMAGE_SIDECAR_API_TOKEN)
   * @param {number} [options.retries] further tries after a refused connection, a reset, a
   *   timeout or a 502/503/504 (honouring Retry-After), with backoff and jitter; never a 4xx
   * @param {number} [options.timeoutMs] bound on each request (a long-poll gets its wait on top)
   * @param {number} [options.uploadTimeoutMs] bound on each upload: longer, since a round's
   *   uploads arrive together and queue for the sidecar's picture processes (which refuse, 503
   *   busy, a picture that would wait past IMAGE_PROCESSING_MAX_WAIT_SECONDS: keep that under
   *   this)
   * @param {(gameCode: string, roundId: string) => Promise<{gameId: string, roundNumber: number}>}
   *   [options.resolveRound] for the story's calls, which name a round by its id alone: the
   *   game and round number from the game server's own tables (recommended when room codes
   *   are recycled); without it they are asked of the sidecar
   */
  constructor({
    baseUrl = process.env.IMAGE_SIDECAR_URL ?? 'http://127.0.0.1:8080',
    token = process.env.IMAGE_SIDECAR_API_TOKEN,
    retries = 3,
    timeoutMs = 10000,
    uploadTimeoutMs = 30000,
    resolveRound,
  } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
    this.retries = retries;
    this.timeoutMs = timeoutMs;
    this.uploadTimeoutMs = uploadTimeoutMs;
    this.resolveRound = resolveRound;
  }

  /**
   * One call, retried where that is safe: `idempotent` calls (reads, deletes, uploads and hits,
   * which the sidecar deduplicates by submission id) after any transient failure, the others
   * only when the request was surely not delivered.
   */
  async #request(method, path, { json, form, signal, idempotent = true, extraMs = 0 } = {}) {
    const requestId = randomUUID();
    const headers = { 'X-Request-ID': requestId, ...traceHeaders() };
    if (this.token && method !== 'GET') headers.Authorization = `Bearer ${this.token}`;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    for (let attempt = 0; ; attempt += 1) {
      const timeout = AbortSignal.timeout(this.timeoutMs + extraMs);
      const attemptSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
      let response;
      try {
        response = await fetch(this.baseUrl + path, { method, headers, body, signal: attemptSignal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const code = error.cause?.code ?? (timeout.aborted ? 'ETIMEDOUT' : 'ECONNRESET');
        if (attempt < this.retries && (idempotent || NOT_SENT.has(code))) {
          await pause(backoffMs(attempt), signal);
          continue;
        }
        throw new SidecarError(0, 'unreachable', `${method} ${path}: ${code}`, undefined, requestId);
      }
      if (RETRIED_STATUSES.has(response.status) && attempt < this.retries) {
        await response.arrayBuffer();
        await pause(retryAfterMs(response) ?? backoffMs(attempt), signal);
        continue;
      }
      if (response.status === 204) return null;
      const text = await response.text();
      let answer;
      try {
        answer = JSON.parse(text);
      } catch {
        throw new SidecarError(response.status, 'http_error',
          `${response.status} ${response.statusText}: ${text.slice(0, 200)}`, undefined, requestId);
      }
      if (!response.ok) {
        const { code, message, field } = answer.error ?? {};
        throw new SidecarError(
          response.status, code ?? 'http_error', message ?? response.statusText, field, requestId);
      }
      return answer;
    }
  }

  /**
   * Store a generated image. Two forms:
   *
   * - the story's `saveImage(buffer, gameCode, roundId, playerId, options?)` resolves to the
   *   image's URL. The game and round number come from `options` (`gameId`, `roundNumber`),
   *   else `resolveRound`, else the sidecar (the round's game if it holds the round, else the
   *   next round of the code's newest game, else a new game). The submission id is derived
   *   from game, round and player, so calling again after a failure stores one picture; other
   *   bytes for a player's round are a 409. Describe it with `cacheImageMetadata`, or at once
   *   with `options.completedSentence`.
   * - `saveImage(buffer, fields, options?)` with every field given resolves to the record.
   *   Retrying with the same submissionId returns the first record.
   *
   * @param {Buffer|Uint8Array} image JPEG, PNG or WebP bytes
   */
  async saveImage(image, fieldsOrGameCode, ...rest) {
    if (typeof fieldsOrGameCode !== 'string') {
      const [{ signal } = {}] = rest;
      const form = new FormData();
      for (const [name, value] of Object.entries(toWire(fieldsOrGameCode))) {
        form.append(name, String(value));
      }
      form.append('image', new Blob([image]), 'image');
      const extraMs = Math.max(0, this.uploadTimeoutMs - this.timeoutMs);
      return this.#request('POST', '/api/images', { form, signal, extraMs });
    }
    const [roundId, playerId, options = {}] = rest;
    const { signal, gameId: _gameId, roundNumber: _roundNumber, ...fields } = options;
    const gameCode = fieldsOrGameCode;
    const { gameId, roundNumber } = await this.#round(gameCode, roundId, options);
    const record = await this.saveImage(image, {
      gameCode, gameId, roundId, roundNumber, playerId,
      submissionId: nameUuid(`submission/${gameId}/${roundId}/${playerId}`),
      ...fields,
    }, { signal });
    if (record.sha256 !== createHash('sha256').update(image).digest('hex')) {
      throw new SidecarError(409, 'conflict', `player ${playerId} already has another picture `
        + `in round ${roundId} of game ${gameCode}`, 'player_id');
    }
    if (record.completed_sentence == null) remember(this.#described, record.image_url, record);
    return record.image_url;
  }

  /**
   * The story's second step: the sentence (and art style) of a picture saved with the story's
   * `saveImage`, found by the URL it returned; it becomes its prompt's cache entry. Resolves to
   * the described record. Describing it again alike changes nothing; differently is a 409.
   */
  async cacheImageMetadata(playerId, roundId, sentence, url, style, options = {}) {
    const { signal, imageId, ...fields } = options;
    const image = imageId ? { image_id: imageId, player_id: playerId, round_id: roundId }
      : this.#described.get(url) ?? await this.#imageAt(url, { signal });
    if (!image) {
      throw new SidecarError(404, 'not_found', `no picture of this sidecar at ${url}`, 'url');
    }
    if (!sameId(image.player_id, playerId) || !sameId(image.round_id, roundId)) {
      throw new SidecarError(409, 'conflict', `${url} is the picture of player ${image.player_id}`
        + ` in round ${image.round_id}; register a cached picture with recordCacheHit`, 'url');
    }
    const record = await this.describeImage(image.image_id,
      { completedSentence: sentence, artStyle: style, ...fields }, { signal });
    this.#described.delete(url);
    return record;
  }

  /** The story's getImage: one player's picture in a round (a round id or number), or null. */
  async getImage(gameCode, roundId, playerId, options = {}) {
    return orNull(this.getPlayerImage(gameCode, roundId, playerId, options));
  }

  /** The story's getGameImages: a round's pictures, or the whole game's without a round. */
  async getGameImages(gameCode, roundId, options = {}) {
    return roundId == null
      ? this.listGame(gameCode, options)
      : this.listRound(gameCode, roundId, options);
  }

  /**
   * The story's checkPromptCache: the cache entry of a prompt hash (`promptHash(prompt,
   * artStyle)` computes it), with `image.image_url` to show, or null on a miss. It only looks:
   * the single-flight flow that also claims a miss is `getOrGenerate` (or `lookupPrompt`).
   * Given the player it looks for (`{ gameCode, roundId, playerId }`, as the story's other
   * calls take them), the `recordCacheHit` of that hash registers the picture as theirs.
   */
  async checkPromptCache(promptHash, options = {}) {
    const { signal, gameCode, roundId, playerId, gameId, roundNumber } = options;
    if (playerId !== undefined) {
      remember(this.#players, promptHash, { gameCode, roundId, playerId, gameId, roundNumber });
    }
    return orNull(this.getCacheEntry(promptHash, { signal }));
  }

  /**
   * The story's recordCacheHit: registers the cached picture as the player's own in their
   * round (so that the round, the zip and the judge's pick include it) and counts the hit and
   * the AI call it saved; resolves to the new record, whose `image_url` is the player's. The
   * player comes from `{ gameCode, roundId, playerId }` (and the game's other options, as for
   * the story's saveImage), else from the `checkPromptCache` call for the same hash. Without a
   * player the hit is only counted (resolves to the entry), with a warning: the round would
   * miss that player's picture.
   */
  async recordCacheHit(promptHash, options = {}) {
    const { signal, ...rest } = options;
    const player = rest.playerId !== undefined ? rest : this.#players.get(promptHash) ?? {};
    const { gameCode, roundId, playerId, gameId: _g, roundNumber: _r, ...fields } = player;
    if (playerId === undefined) {
      if (!this.#warnedHitWithoutPlayer) {
        this.#warnedHitWithoutPlayer = true;
        process.emitWarning('recordCacheHit without { gameCode, roundId, playerId } counts the '
          + 'hit but gives no player a picture: their round, its zip and the judge will miss it',
          { code: 'IMAGE_SIDECAR_HIT_WITHOUT_PLAYER' });
      }
      return this.#request('POST', `/api/cache/${enc(promptHash)}/hit-count`,
        { signal, idempotent: false }); // a retry after a lost answer would count twice
    }
    this.#players.delete(promptHash);
    const { gameId, roundNumber } = await this.#round(gameCode, roundId, { ...player, signal });
    const { image: cached } = await this.getCacheEntry(promptHash, { signal });
    return this.registerHit(promptHash, {
      gameCode, gameId, roundId, roundNumber, playerId,
      submissionId: nameUuid(`submission/${gameId}/${roundId}/${playerId}`),
      completedSentence: cached.completed_sentence,
      prompt: cached.prompt,
      ...fields,
    }, { signal });
  }

  /** The story's cleanupExpiredImages: the cleanup now; its summary (counts and seconds). */
  async cleanupExpiredImages(options = {}) {
    return this.runCleanup(options);
  }

  /** Describe a picture stored without its sentence (PATCH /api/images/{imageId}). */
  async describeImage(imageId, description, { signal } = {}) {
    return this.#request('PATCH', `/api/images/${enc(imageId)}`,
      { json: toWire(description), signal });
  }

  /** The game and round number of a round named by its id alone (the story's calls). */
  async #round(gameCode, roundId, { gameId, roundNumber, signal }) {
    if (gameId != null && roundNumber != null) return { gameId, roundNumber };
    const cacheKey = `${String(gameCode).toUpperCase()}/${roundId}/${gameId ?? ''}`;
    const known = this.#rounds.get(cacheKey);
    if (known) return known;
    let found;
    if (this.resolveRound) {
      found = await this.resolveRound(gameCode, roundId);
    } else {
      const round = await this.listRound(gameCode, roundId, { gameId, signal });
      if (round.length > 0) {
        found = { gameId: round[0].game_id, roundNumber: round[0].round_number };
      } else {
        const game = await this.listGame(gameCode, { gameId, signal });
        found = game.length > 0
          ? { gameId: game[0].game_id,
              roundNumber: Math.max(...game.map((image) => image.round_number)) + 1 }
          : { gameId: gameId ?? nameUuid(`game/${gameCode}/${roundId}`), roundNumber: 1 };
      }
    }
    found = { gameId: gameId ?? found.gameId, roundNumber: roundNumber ?? found.roundNumber };
    remember(this.#rounds, cacheKey, found);
    return found;
  }

  /** The record of a picture by its URL (`.../game-{CODE}-{gameId}/round-{n}/player-{id}.ext`). */
  async #imageAt(url, { signal }) {
    const match = /\/game-([A-Za-z0-9_-]+)-([0-9a-f-]{36})\/round-(\d+)\/player-([0-9a-f-]{36})\.\w+$/
      .exec(new URL(url, this.baseUrl).pathname);
    if (!match) return undefined;
    const [, gameCode, gameId, roundNumber, playerId] = match;
    const record = await this.getImage(gameCode, roundNumber, playerId, { gameId, signal });
    return record ?? undefined;
  }

  /** Give a claim back (the AI call failed): the next caller gets it at once. */
  async releaseClaim(claimToken, { reason, signal } = {}) {
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : '';
    return this.#request('DELETE', `/api/cache/claims/${enc(claimToken)}${query}`, { signal });
  }

  /**
   * hit ({image}), miss ({claimToken}: generate, then save with it) or pending. With
   * `register` (a hit's fields), a hit is registered for that player in the same call and
   * `image` is the player's new record (`registered: true`).
   */
  async lookupPrompt(prompt, artStyle, {
    waitMs = 0, model = null, size = null, register, signal,
  } = {}) {
    const json = { prompt, art_style: artStyle ?? null, model, size, wait_ms: waitMs };
    if (register) json.register = toWire(register);
    const answer = await this.#request('POST', '/api/cache/lookup', {
      json,
      signal,
      idempotent: false, // a lookup may take a claim: retried only when surely not delivered
      extraMs: waitMs,
    });
    return {
      status: answer.status,
      promptHash: answer.prompt_hash,
      image: answer.image,
      claimToken: answer.claim_token,
      retryAfterMs: answer.retry_after_ms,
      registered: answer.registered ?? false,
    };
  }

  /** The cache entry of a prompt hash (hit count, last hit, its image); 404 when none. */
  async getCacheEntry(promptHash, { signal } = {}) {
    return this.#request('GET', `/api/cache/${enc(promptHash)}`, { signal });
  }

  /** Forget a prompt's mapping (the next identical prompt is generated afresh). */
  async forgetCacheEntry(promptHash, { signal } = {}) {
    return this.#request('DELETE', `/api/cache/${enc(promptHash)}`, { signal });
  }

  /**
   * Take a picture down everywhere by its bytes' SHA-256; the bytes and pictures that look like
   * them are blocked afterwards. `similar: true` also removes the stored look-alikes.
   */
  async takeDown(sha256, { reason, similar, signal } = {}) {
    const query = new URLSearchParams();
    if (reason) query.set('reason', reason);
    if (similar) query.set('similar', 'true');
    const search = query.size ? `?${query}` : '';
    return this.#request('DELETE', `/api/images/by-sha256/${enc(sha256)}${search}`, { signal });
  }

  /** Business figures over the last `days` (1-365). */
  async getStats({ days = 7, signal } = {}) {
    return this.#request('GET', `/api/stats?days=${enc(days)}`, { signal });
  }

  /** Run the cleanup of expired images now; its summary. */
  async runCleanup({ signal } = {}) {
    return this.#request('POST', '/api/admin/cleanup', { signal, extraMs: 600000 });
  }

  /** Register a cached image as this player's image (no bytes are sent or copied). */
  async registerHit(promptHash, fields, { signal } = {}) {
    return this.#request('POST', `/api/cache/${promptHash}/hits`, { json: toWire(fields), signal });
  }

  /**
   * The whole flow: reuse the image of an identical prompt, or generate one exactly once
   * (concurrent callers of the same new prompt wait for the first instead of paying again).
   * The generator gets an AbortSignal that fires at the deadline or when `signal` does; if it
   * throws or the deadline passes, the claim is given back so the next caller need not wait.
   * @param {object} fields as for saveImage; `completedSentence` doubles as the prompt
   * @param {(prompt: string, options: {signal: AbortSignal}) => Promise<Buffer>} generate calls
   *   the paid AI service
   * @param {{waitMs?: number, deadlineMs?: number, signal?: AbortSignal}} [options]
   * @returns {Promise<{record: object, reused: boolean}>} `reused` when the picture was made
   *   for another prompt's caller (a retry of the player's own upload is not a reuse)
   */
  async getOrGenerate(fields, generate, { waitMs = 20000, deadlineMs = 120000, signal } = {}) {
    const deadline = AbortSignal.timeout(deadlineMs);
    const aborted = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const prompt = fields.prompt ?? fields.completedSentence;
    const params = { model: fields.model ?? null, size: fields.size ?? null };
    for (;;) {
      const found = await this.lookupPrompt(prompt, fields.artStyle,
        { waitMs, ...params, signal: aborted });
      if (found.status === 'hit') {
        const record = await this.registerHit(found.promptHash, fields, { signal: aborted });
        return { record, reused: record.reused_from != null };
      }
      if (found.status === 'miss') {
        let image;
        try {
          image = await generate(prompt, { signal: aborted });
          aborted.throwIfAborted();
        } catch (error) {
          const reason = aborted.aborted ? 'deadline passed' : `generator failed: ${error}`;
          await this.releaseClaim(found.claimToken, { reason: reason.slice(0, 500) })
            .catch(() => {}); // it lapses by itself if this does not get through
          throw error;
        }
        const record = await this.saveImage(image, { ...fields, claimToken: found.claimToken },
          { signal: aborted });
        return { record, reused: false };
      }
      // pending after waitMs: someone else is still generating; ask again.
    }
  }

  // Room codes are recycled: `gameId` names one game; without it, the code's newest game.

  async listRound(gameCode, round, { gameId, signal } = {}) {
    const path = `/api/games/${enc(gameCode)}/rounds/${enc(round)}/images${query({ gameId })}`;
    return (await this.#request('GET', path, { signal })).images;
  }

  async listGame(gameCode, { gameId, signal } = {}) {
    const path = `/api/games/${enc(gameCode)}/images${query({ gameId })}`;
    return (await this.#request('GET', path, { signal })).images;
  }

  async getPlayerImage(gameCode, round, playerId, { gameId, signal } = {}) {
    const path = `/api/games/${enc(gameCode)}/rounds/${enc(round)}/players/${enc(playerId)}`
      + `/image${query({ gameId })}`;
    return this.#request('GET', path, { signal });
  }

  /** The judge's pick: the player's picture in that round (a number or a round id) wins it. */
  async pickWinner(gameCode, round, playerId, { gameId, signal } = {}) {
    return this.#request('PUT', `/api/games/${enc(gameCode)}/rounds/${enc(round)}/winner`,
      { json: toWire({ playerId, gameId }), signal });
  }

  /**
   * A share link of a whole game, or of one round with `roundNumber`, for players: resolves to
   * `{ share_id, url, expires_at, ... }`. Its pictures are kept while it lives (`expiresInDays`,
   * default 30).
   */
  async createShare(gameCode, { gameId, roundNumber, expiresInDays, signal } = {}) {
    return this.#request('POST', '/api/shares', {
      json: toWire({ gameCode, gameId, roundNumber, expiresInDays }),
      signal,
      idempotent: false, // a retry after a lost answer would make a second link
    });
  }

  /** Revoke a share: its page and zip are gone at once. */
  async revokeShare(shareId, { signal } = {}) {
    return this.#request('DELETE', `/api/shares/${enc(shareId)}`, { signal });
  }

  /** Delete a game's images now: `gameId` names one game, `all: true` every game of the code. */
  async purgeGame(gameCode, { gameId, all, signal } = {}) {
    return this.#request('DELETE', `/api/games/${enc(gameCode)}${query({ gameId, all })}`,
      { signal });
  }

  async purgePlayer(gameCode, playerId, { gameId, all, signal } = {}) {
    const path = `/api/games/${enc(gameCode)}/players/${enc(playerId)}/images`
      + query({ gameId, all });
    return this.#request('DELETE', path, { signal });
  }
}

const enc = (value) => encodeURIComponent(String(value));

/** A UUID named by `name` (version 5 style, SHA-1): the same name, the same id, on any host. */
function nameUuid(name) {
  const hex = createHash('sha1').update(`picture-this/${name}`).digest('hex');
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}`
    + `-${hex.slice(20, 32)}`;
}

const sameId = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

/** A bounded memo: the oldest entry goes once it holds 1,000. */
function remember(map, key, value) {
  map.set(key, value);
  if (map.size > 1000) map.delete(map.keys().next().value);
}

/** The answer of a read, or null when the sidecar has none (404). */
async function orNull(reading) {
  try {
    return await reading;
  } catch (error) {
    if (error instanceof SidecarError && error.status === 404) return null;
    throw error;
  }
}

/** `?game_id=...&all=true` from the options given (camelCase here, snake_case on the wire). */
function query(options) {
  const params = new URLSearchParams(Object.entries(toWire(options)).map(([k, v]) => [k, String(v)]));
  return params.size ? `?${params}` : '';
}

/** Exponential backoff with full jitter: 0-200 ms, 0-400 ms, 0-800 ms... at most 5 s. */
const backoffMs = (attempt) => Math.random() * Math.min(5000, 200 * 2 ** attempt);

function retryAfterMs(response) {
  const seconds = Number(response.headers.get('Retry-After'));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 30) * 1000 : undefined;
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); },
      { once: true });
  });
}

// camelCase in JavaScript, snake_case on the wire; undefined and null fields are left out.
function toWire(fields) {
  const wire = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    wire[name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = value;
  }
  return wire;
}
