// A game server's handler inside an OpenTelemetry span calls saveImage: the sidecar's spans must
// continue that span's trace (tests/integration/test_tracing.py runs this against a sidecar
// exporting to a receiver). Prints the saved record. Env: SIDECAR_URL, TRACE_ID, SPAN_ID.
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { ImageStorageService } from '../../index.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const handlerSpan = trace.wrapSpanContext({
  traceId: process.env.TRACE_ID,
  spanId: process.env.SPAN_ID,
  traceFlags: TraceFlags.SAMPLED,
});
const sidecar = new ImageStorageService({ baseUrl: process.env.SIDECAR_URL });
const gameId = randomUUID();
const record = await context.with(trace.setSpan(context.active(), handlerSpan), () =>
  sidecar.saveImage(readFileSync(process.env.PICTURE), {
    gameCode: 'TRACE',
    gameId,
    roundId: randomUUID(),
    roundNumber: 1,
    playerId: randomUUID(),
    submissionId: randomUUID(),
    completedSentence: 'A traced sentence',
  }));
console.log(JSON.stringify(record));
