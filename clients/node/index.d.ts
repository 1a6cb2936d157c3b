// Types of the image sidecar client (index.js). The records' fields are the sidecar's
// openapi.json, in its snake_case; the client's own options are camelCase.

export { canonicalText, promptHash } from './prompt-hash.js';

/** A failed call; `status` is 0 when nothing answered. */
export class SidecarError extends Error {
  constructor(status: number, code: string, message: string, field?: string, requestId?: string);
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly requestId: string | undefined;
}

export interface Rendition {
  name: 'thumb' | 'large';
  format: 'webp' | 'avif';
  url: string;
  width: number;
  height: number;
  content_type: 'image/webp' | 'image/avif';
  /** null until the rendition is made (on its first request, unless made at upload). */
  size_bytes: number | null;
}

/** An image record (openapi.json, `Image`). */
export interface ImageRecord {
  image_id: string;
  game_code: string;
  game_id: string;
  round_id: string;
  round_number: number;
  player_id: string;
  /** The player's display name, when the game server gave one. */
  player_name: string | null;
  submission_id: string;
  /** null while a picture saved by the story's saveImage waits for cacheImageMetadata. */
  completed_sentence: string | null;
  /** The judge's pick of its round. */
  is_winner: boolean;
  prompt: string | null;
  art_style: string | null;
  ai_service: string | null;
  model: string | null;
  size: string | null;
  image_url: string;
  image_path: string;
  content_type: 'image/jpeg' | 'image/png' | 'image/webp';
  size_bytes: number;
  sha256: string;
  width: number | null;
  height: number | null;
  placeholder: string | null;
  renditions: Rendition[];
  prompt_hash: string | null;
  generation_cost_usd: number | null;
  reused_from: string | null;
  generated_at: string;
  created_at: string;
  expires_at: string;
}

/** What the game server says about a picture (sent as the sidecar's snake_case fields). */
export interface ImageFields {
  gameCode: string;
  gameId: string;
  roundId: string;
  roundNumber: number;
  playerId: string;
  /** Shown on the gallery's cards and in download names (1-40 characters, any script). */
  playerName?: string | null;
  submissionId: string;
  completedSentence: string;
  prompt?: string;
  artStyle?: string | null;
  aiService?: string | null;
  model?: string | null;
  size?: string | null;
  generationCostUsd?: number;
  retentionDays?: number;
  claimToken?: string;
}

/** An upload's fields: the sentence may be given later (describeImage). */
export type UploadFields = Omit<ImageFields, 'completedSentence'> & { completedSentence?: string };

export interface CallOptions {
  signal?: AbortSignal;
}

export interface LookupResult {
  status: 'hit' | 'miss' | 'pending';
  promptHash: string;
  image?: ImageRecord;
  claimToken?: string;
  retryAfterMs?: number;
  /** With `register` on a hit: `image` is the player's new record. */
  registered: boolean;
}

export interface CacheEntry {
  prompt_hash: string;
  hit_count: number;
  last_hit: string;
  created_at: string;
  image: ImageRecord;
}

export interface GameSelector extends CallOptions {
  /** One of the games that share the room code; default: the code's newest game. */
  gameId?: string;
}

export interface PurgeSelector extends GameSelector {
  /** Every game holding the code. */
  all?: boolean;
}

/** What a deletion removed (purges, takedowns and cleanups alike). */
export interface DeletionTally {
  images_deleted: number;
  files_deleted: number;
  bytes_freed: number;
  cache_entries_moved: number;
  cache_entries_removed: number;
  files_failed: number;
  failed_keys: string[];
}

export interface Takedown extends DeletionTally {
  sha256: string;
  image_ids: string[];
  /** Stored look-alikes: removed with `similar: true`, else only named. */
  lookalike_image_ids: string[];
  urls: string[];
  blocked: true;
  cdn_notified: boolean | null;
}

export interface CleanupSummary extends DeletionTally {
  outcome: 'success' | 'skipped' | 'failed' | 'dry_run';
  orphans_swept: number;
  seconds: number;
  reason?: string;
}

export interface Stats {
  days: number;
  images_per_day: { date: string; images: number; generated: number; reused: number; cost_saved_usd: number }[];
  cache_hit_rate: number | null;
  cache_hits: number;
  live_images: number;
  average_image_bytes: number;
  storage_used_bytes: number;
  cost_saved_usd: number;
  cost_saved_usd_all_time: number;
  rendition_formats: ('webp' | 'avif')[];
}

export interface RoundWinner {
  game_code: string;
  game_id: string;
  round_id: string;
  round_number: number;
  player_id: string;
  image_id: string;
  chosen_at: string;
}

export interface Share {
  share_id: string;
  /** The gallery page for players (IMAGE_SHARE_BASE_URL/s/{share_id}). */
  url: string;
  expires_at: string;
  game_code: string;
  game_id: string;
  round_number: number | null;
}

export interface DeletionSummary extends DeletionTally {
  game_ids: string[];
}

export interface ServiceOptions {
  /** The sidecar, e.g. http://127.0.0.1:8080 */
  baseUrl?: string;
  /** IMAGE_SIDECAR_API_TOKEN, sent on every write */
  token?: string;
  /** Further tries after a refused connection, a reset, a timeout or a 502/503/504 (3). */
  retries?: number;
  /** Bound on each request in ms (10000); a long-poll gets its wait on top. */
  timeoutMs?: number;
  /**
   * Bound on each upload in ms (30000): a round's uploads queue for the sidecar's picture
   * processes; keep IMAGE_PROCESSING_MAX_WAIT_SECONDS under it.
   */
  uploadTimeoutMs?: number;
  /**
   * For the story's calls, which name a round by its id alone: the game and round number from
   * the game server's own tables. Without it they are asked of the sidecar.
   */
  resolveRound?: (gameCode: string, roundId: string) => Promise<RoundOfGame>;
}

export interface RoundOfGame {
  gameId: string;
  roundNumber: number;
}

/** The trailing options of the story's saveImage (and of recordCacheHit with a player). */
export interface StoryImageOptions
  extends CallOptions,
    Partial<RoundOfGame>,
    Partial<Omit<ImageFields, 'gameCode' | 'gameId' | 'roundId' | 'roundNumber' | 'playerId' | 'claimToken'>> {}

/** What describes a picture saved without its sentence. */
export type ImageDescription = Pick<
  ImageFields,
  'completedSentence' | 'prompt' | 'artStyle' | 'aiService' | 'model' | 'size'
>;

export type Generator = (prompt: string, options: { signal: AbortSignal }) => Promise<Uint8Array>;

export class ImageStorageService {
  constructor(options?: ServiceOptions);

  // The story's ImageStorageService, with its names and argument order.
  /** Resolves to the image's URL; describe it with cacheImageMetadata. */
  saveImage(
    buffer: Uint8Array,
    gameCode: string,
    roundId: string,
    playerId: string,
    options?: StoryImageOptions,
  ): Promise<string>;
  getImage(
    gameCode: string,
    roundId: string | number,
    playerId: string,
    options?: GameSelector,
  ): Promise<ImageRecord | null>;
  getGameImages(
    gameCode: string,
    roundId?: string | number | null,
    options?: GameSelector,
  ): Promise<ImageRecord[]>;
  cacheImageMetadata(
    playerId: string,
    roundId: string,
    sentence: string,
    url: string,
    style?: string | null,
    options?: CallOptions & Omit<ImageDescription, 'completedSentence' | 'artStyle'> & { imageId?: string },
  ): Promise<ImageRecord>;
  /** With the player it looks for, that hash's recordCacheHit registers the picture as theirs. */
  checkPromptCache(
    promptHash: string,
    options?: CallOptions | (StoryImageOptions & { gameCode: string; roundId: string; playerId: string }),
  ): Promise<CacheEntry | null>;
  /** Counts the hit; with a player (here or given to checkPromptCache), also registers the
   * cached picture as theirs and resolves to their record. Without one it warns. */
  recordCacheHit(promptHash: string, options?: CallOptions): Promise<CacheEntry | ImageRecord>;
  recordCacheHit(
    promptHash: string,
    options: StoryImageOptions & { gameCode: string; roundId: string; playerId: string },
  ): Promise<ImageRecord>;
  cleanupExpiredImages(options?: CallOptions): Promise<CleanupSummary>;

  // One method per endpoint.
  saveImage(image: Uint8Array, fields: UploadFields, options?: CallOptions): Promise<ImageRecord>;
  describeImage(
    imageId: string,
    description: ImageDescription,
    options?: CallOptions,
  ): Promise<ImageRecord>;
  releaseClaim(claimToken: string, options?: CallOptions & { reason?: string }): Promise<null>;
  lookupPrompt(
    prompt: string,
    artStyle?: string | null,
    options?: CallOptions & {
      waitMs?: number;
      model?: string | null;
      size?: string | null;
      register?: Omit<ImageFields, 'completedSentence'> & { completedSentence?: string };
    },
  ): Promise<LookupResult>;
  getCacheEntry(promptHash: string, options?: CallOptions): Promise<CacheEntry>;
  forgetCacheEntry(promptHash: string, options?: CallOptions): Promise<null>;
  takeDown(
    sha256: string,
    options?: CallOptions & { reason?: string; similar?: boolean },
  ): Promise<Takedown>;
  getStats(options?: CallOptions & { days?: number }): Promise<Stats>;
  runCleanup(options?: CallOptions): Promise<CleanupSummary>;
  registerHit(promptHash: string, fields: ImageFields, options?: CallOptions): Promise<ImageRecord>;
  getOrGenerate(
    fields: ImageFields,
    generate: Generator,
    options?: CallOptions & { waitMs?: number; deadlineMs?: number },
  ): Promise<{ record: ImageRecord; reused: boolean }>;
  listRound(gameCode: string, round: number | string, options?: GameSelector): Promise<ImageRecord[]>;
  listGame(gameCode: string, options?: GameSelector): Promise<ImageRecord[]>;
  getPlayerImage(
    gameCode: string,
    round: number | string,
    playerId: string,
    options?: GameSelector,
  ): Promise<ImageRecord>;
  pickWinner(
    gameCode: string,
    round: number | string,
    playerId: string,
    options?: GameSelector,
  ): Promise<RoundWinner>;
  createShare(
    gameCode: string,
    options?: GameSelector & { roundNumber?: number; expiresInDays?: number },
  ): Promise<Share>;
  revokeShare(shareId: string, options?: CallOptions): Promise<null>;
  purgeGame(gameCode: string, options?: PurgeSelector): Promise<DeletionSummary>;
  purgePlayer(gameCode: string, playerId: string, options?: PurgeSelector): Promise<DeletionSummary>;
}
