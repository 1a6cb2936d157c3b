// The JavaScript prompt hash agrees with the sidecar's on every published vector and, when the
// Python suite passes one (PROMPT_HASH_CORPUS), on its corpus of random Unicode strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { canonicalText, promptHash } from '../prompt-hash.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../../tests/vectors/prompt_hash.json', import.meta.url), 'utf8'));

test('every published vector of both versions hashes as the vectors file says', () => {
  for (const v of vectors) {
    assert.equal(promptHash(v.prompt, v.art_style, { model: v.model, size: v.size }),
      v.prompt_hash, JSON.stringify(v));
  }
});

test('canonical text folds case the way Python does, not the way JavaScript lowercases', () => {
  assert.equal(canonicalText('  Straße\u00a0 IS\n big '), 'strasse is big');
  assert.equal(canonicalText('\ufb01ne'), 'fine');
  assert.equal(canonicalText('e\u0301'), canonicalText('\u00e9'));
  assert.equal(canonicalText('a\u001fb'), 'a b'); // Python's whitespace, not JavaScript's
  assert.equal(canonicalText('\ufeffa'), '\ufeffa');
});

test('the random corpus from the Python side hashes the same', { skip: !process.env.PROMPT_HASH_CORPUS }, () => {
  const corpus = JSON.parse(readFileSync(process.env.PROMPT_HASH_CORPUS, 'utf8'));
  assert.ok(corpus.length >= 1000);
  for (const c of corpus) {
    assert.equal(promptHash(c.prompt, c.art_style, { model: c.model, size: c.size }),
      c.prompt_hash, JSON.stringify(c));
  }
});
