// A game server's code against the client's declarations: `tsc --noEmit` must accept it.
import { ImageStorageService, SidecarError, promptHash } from '@picture-this/image-sidecar-client';
import type { ImageFields, ImageRecord } from '@picture-this/image-sidecar-client';

const images = new ImageStorageService({ baseUrl: 'http://127.0.0.1:8080', timeoutMs: 5000 });

export async function playTurn(fields: ImageFields, ai: (prompt: string) => Promise<Uint8Array>) {
  const controller = new AbortController();
  try {
    const { record, reused }: { record: ImageRecord; reused: boolean } = await images.getOrGenerate(
      fields,
      (prompt, { signal }) => (signal.aborted ? Promise.reject(signal.reason) : ai(prompt)),
      { deadlineMs: 60000, signal: controller.signal },
    );
    const thumb = record.renditions.find((r) => r.name === 'thumb' && r.format === 'webp');
    return { url: thumb?.url ?? record.image_url, reused, key: record.prompt_hash ?? promptHash(fields.completedSentence, fields.artStyle) };
  } catch (error) {
    if (error instanceof SidecarError && error.status === 409) return null;
    throw error;
  }
}

// The story's ImageStorageService section, as the game server codes it.
export async function storyTurn(buffer: Uint8Array, gameCode: string, roundId: string, playerId: string,
                                sentence: string, style: string) {
  const service = new ImageStorageService();
  const player = { gameCode, roundId, playerId };
  const cached = await service.checkPromptCache(promptHash(sentence, style), player);
  if (cached) {
    const hit: ImageRecord = await service.recordCacheHit(cached.prompt_hash, player);
    return hit.image_url;
  }
  const url: string = await service.saveImage(buffer, gameCode, roundId, playerId);
  const record: ImageRecord = await service.cacheImageMetadata(playerId, roundId, sentence, url, style);
  const mine: ImageRecord | null = await service.getImage(gameCode, roundId, playerId);
  const round: ImageRecord[] = await service.getGameImages(gameCode, roundId);
  const registered: ImageRecord = await service.recordCacheHit(record.prompt_hash ?? '', {
    gameCode, roundId, playerId, signal: AbortSignal.timeout(1000) });
  const { images_deleted } = await service.cleanupExpiredImages();
  return { url, mine, round, registered, images_deleted };
}
