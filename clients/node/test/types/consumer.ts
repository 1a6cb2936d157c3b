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
    return { url: thumb?.url ?? record.image_url, reused, key: promptHash(record.prompt, record.art_style) };
  } catch (error) {
    if (error instanceof SidecarError && error.status === 409) return null;
    throw error;
  }
}
