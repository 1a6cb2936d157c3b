// ImageStorageService: the game server's side of the image sidecar's HTTP API.
// No dependencies: Node 20+ has fetch, FormData and Blob built in.

import { randomUUID } from 'node:crypto';

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
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] the sidecar, e.g. http://127.0.0.1:8080
   * @param {string} [options.token] IMAGE_SIDECAR_API_TOKEN, sent on every write
   * @param {number} [options.retries] further tries after a refused connection, a reset, a
   *   timeout or a 502/503/504 (honouring Retry-After), with backoff and jitter; never a 4xx
   * @param {number} [options.timeoutMs] bound on each request (a long-poll gets its wait on top)
   */
  constructor({ baseUrl = 'http://127.0.0.1:8080', token, retries = 3, timeoutMs = 10000 } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
    this.retries = retries;
    this.timeoutMs = timeoutMs;
  }

  /**
   * One call, retried where that is safe: `idempotent` calls (reads, deletes, uploads and hits,
   * which the sidecar deduplicates by submission id) after any transient failure, the others
   * only when the request was surely not delivered.
   */
  async #request(method, path, { json, form, signal, idempotent = true, extraMs = 0 } = {}) {
    const requestId = randomUUID();
    const headers = { 'X-Request-ID': requestId };
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
   * Store a generated image. Retrying with the same submissionId returns the first record.
   * @param {Buffer|Uint8Array} image JPEG, PNG or WebP bytes
   * @param {object} fields gameCode, gameId, roundId, roundNumber, playerId, submissionId,
   *   completedSentence, and optionally artStyle, aiService, prompt, generationCostUsd,
   *   retentionDays, claimToken
   */
  async saveImage(image, fields, { signal } = {}) {
    const form = new FormData();
    for (const [name, value] of Object.entries(toWire(fields))) form.append(name, String(value));
    form.append('image', new Blob([image]), 'image');
    return this.#request('POST', '/api/images', { form, signal });
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

  /** Take a picture down everywhere by its bytes' SHA-256; the bytes are blocked afterwards. */
  async takeDown(sha256, { reason, signal } = {}) {
    const query = reason ? `?reason=${encodeURIComponent(reason)}` : '';
    return this.#request('DELETE', `/api/images/by-sha256/${enc(sha256)}${query}`, { signal });
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
