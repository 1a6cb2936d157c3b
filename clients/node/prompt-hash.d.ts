/** NFC, whitespace collapsed and trimmed, Unicode case folding: the sidecar's canonical text. */
export function canonicalText(text: string): string;

/** The sidecar's prompt hash (v1 without model and size, v2 with either). */
export function promptHash(
  prompt: string,
  artStyle?: string | null,
  params?: { model?: string | null; size?: string | null },
): string;
