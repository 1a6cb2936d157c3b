// ImageStorageService: the game server's side of the image sidecar's HTTP API (contract v1).
// No dependencies: Node 20+ has fetch, FormData and Blob built in.

export { canonicalText, promptHash } from './prompt-hash.js';

/** An error answered by the sidecar: HTTP status, the contract's error code, and the field. */
export class SidecarError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'SidecarError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export class ImageStorageService {
  /**
   * @param {object} options
   * @param {string} [options.baseUrl] the sidecar, e.g. http://127.0.0.1:8080
   * @param {string} [options.token] IMAGE_SIDECAR_API_TOKEN, sent on every write
   * @param {number} [options.retries] retries of a 503 (database briefly down), honouring Retry-After
   */
  constructor({ baseUrl = 'http://127.0.0.1:8080', token, retries = 2 } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.token = token;
    this.retries = retries;
  }

  async #request(method, path, { json, form } = {}) {
    const headers = {};
    if (this.token && method !== 'GET') headers.Authorization = `Bearer ${this.token}`;
    let body;
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    for (let attempt = 0; ; attempt += 1) {
      const response = await fetch(this.baseUrl + path, { method, headers, body });
      if (response.status === 503 && attempt < this.retries) {
        const seconds = Number(response.headers.get('Retry-After') ?? '1');
        await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 10) * 1000));
        continue;
      }
      if (response.status === 204) return null;
      const answer = await response.json();
      if (!response.ok) {
        const { code, message, field } = answer.error ?? {};
        throw new SidecarError(response.status, code, message ?? response.statusText, field);
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
  async saveImage(image, fields) {
    const form = new FormData();
    for (const [name, value] of Object.entries(toWire(fields))) form.append(name, String(value));
    form.append('image', new Blob([image]), 'image');
    return this.#request('POST', '/api/images', { form });
  }

  /** hit ({image}), miss ({claimToken}: generate, then save with it) or pending. */
  async lookupPrompt(prompt, artStyle, { waitMs = 0, model = null, size = null } = {}) {
    const answer = await this.#request('POST', '/api/cache/lookup', {
      json: { prompt, art_style: artStyle ?? null, model, size, wait_ms: waitMs },
    });
    return {
      status: answer.status,
      promptHash: answer.prompt_hash,
      image: answer.image,
      claimToken: answer.claim_token,
      retryAfterMs: answer.retry_after_ms,
    };
  }

  /** Register a cached image as this player's image (no bytes are sent or copied). */
  async registerHit(promptHash, fields) {
    return this.#request('POST', `/api/cache/${promptHash}/hits`, { json: toWire(fields) });
  }

  /**
   * The whole flow: reuse the image of an identical prompt, or generate one exactly once
   * (concurrent callers of the same new prompt wait for the first instead of paying again).
   * @param {object} fields as for saveImage; `completedSentence` doubles as the prompt
   * @param {(prompt: string) => Promise<Buffer>} generate calls the paid AI service
   * @returns {Promise<{record: object, reused: boolean}>}
   */
  async getOrGenerate(fields, generate, { waitMs = 20000 } = {}) {
    const prompt = fields.prompt ?? fields.completedSentence;
    for (;;) {
      const found = await this.lookupPrompt(prompt, fields.artStyle, { waitMs });
      if (found.status === 'hit') {
        return { record: await this.registerHit(found.promptHash, fields), reused: true };
      }
      if (found.status === 'miss') {
        const image = await generate(prompt);
        const record = await this.saveImage(image, { ...fields, claimToken: found.claimToken });
        return { record, reused: false };
      }
      // pending after waitMs: someone else is still generating; ask again.
    }
  }

  async listRound(gameCode, round) {
    return (await this.#request('GET', `/api/games/${enc(gameCode)}/rounds/${enc(round)}/images`)).images;
  }

  async listGame(gameCode) {
    return (await this.#request('GET', `/api/games/${enc(gameCode)}/images`)).images;
  }

  async getPlayerImage(gameCode, round, playerId) {
    return this.#request(
      'GET', `/api/games/${enc(gameCode)}/rounds/${enc(round)}/players/${enc(playerId)}/image`);
  }

  async purgeGame(gameCode) {
    return this.#request('DELETE', `/api/games/${enc(gameCode)}`);
  }

  async purgePlayer(gameCode, playerId) {
    return this.#request('DELETE', `/api/games/${enc(gameCode)}/players/${enc(playerId)}/images`);
  }
}

const enc = (value) => encodeURIComponent(String(value));

// camelCase in JavaScript, snake_case on the wire; undefined and null fields are left out.
function toWire(fields) {
  const wire = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined || value === null) continue;
    wire[name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = value;
  }
  return wire;
}
