// The prompt hash, computed exactly as the sidecar computes it (README, "The canonical prompt
// and its hash"): a game server can name a cached picture before it asks for it.
import { createHash } from 'node:crypto';
import { CASE_FOLDS, WHITESPACE } from './unicode-tables.js';

/**
 * NFC, whitespace runs collapsed to one space and trimmed, then Unicode case folding: the
 * spellings a player cannot tell apart are one text. Python's whitespace and case folding, from
 * its Unicode database (unicode-tables.js), not JavaScript's, which differ from them.
 * @param {string} text
 * @returns {string}
 */
export function canonicalText(text) {
  const spaced = text.normalize('NFC').replace(WHITESPACE, ' ').replace(/^ +| +$/g, '');
  let folded = '';
  for (const char of spaced) folded += CASE_FOLDS.get(char.codePointAt(0)) ?? char;
  return folded;
}

/**
 * The sidecar's prompt hash: version 1 of (prompt, art style) without generation parameters,
 * version 2 with `model` or `size`.
 * @param {string} prompt
 * @param {string | null} [artStyle]
 * @param {{model?: string | null, size?: string | null}} [params]
 * @returns {string} 64 lowercase hexadecimal characters
 */
export function promptHash(prompt, artStyle = null, { model = null, size = null } = {}) {
  const parts = [canonicalText(prompt), canonicalText(artStyle ?? '')];
  const encoding = model == null && size == null
    ? ['v1', ...parts]
    : ['v2', ...parts, canonicalText(model ?? ''), canonicalText(size ?? '')];
  return createHash('sha256').update(JSON.stringify(encoding), 'utf8').digest('hex');
}
