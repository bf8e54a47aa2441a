#!/usr/bin/env node
// A step for a frontend build: ingest a documentation folder, look a question up in it, and
// stream a grounded answer to stdout (for a generated FAQ page, a release note draft, …).
// Progress and a final JSON report go to stderr, so stdout can be redirected into the build.
//
//   node examples/frontend-build.mjs <docs-folder> [question] [--config capibara.toml]
//                                    [--mode guided] [--k 5] [--max-tokens 400]
//
// The models come from the configuration: a capibara.toml (`--config`, or $CAPIBARA_CONFIG), or
// the embedded defaults (the local chat and embedding models), with `CAPIBARA_…` overrides, as
// for `capibara serve`. Ingestion is incremental: unchanged files are skipped on the next build.

import { Capibara } from 'capibara'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    config: { type: 'string' },
    mode: { type: 'string', default: 'guided' },
    k: { type: 'string', default: '5' },
    'max-tokens': { type: 'string', default: '400' },
  },
})

const [docs, question = '¿Qué explica esta documentación y cómo se empieza a usar?'] = positionals
if (!docs) {
  process.stderr.write('usage: frontend-build.mjs <docs-folder> [question] [--config capibara.toml]\n')
  process.exit(2)
}

const log = (line) => process.stderr.write(`${line}\n`)

/** The model's instructions: answer from the numbered sources only, citing them. */
function groundedMessages(query, results) {
  const sources = results
    .map((r) => `[${r.n}] ${r.title ?? r.source ?? r.id}\n${r.text}`)
    .join('\n\n')
  return [
    {
      role: 'system',
      content:
        'Eres Capibara, un asistente que responde en español. Responde solo con la información de ' +
        'las fuentes numeradas y cítalas como [n]. Si no está en las fuentes, dilo.\n\n' +
        `Fuentes:\n${sources || '(ninguna)'}`,
    },
    { role: 'user', content: query },
  ]
}

const started = performance.now()
const cap = await Capibara.open(options.config ?? process.env.CAPIBARA_CONFIG ?? null)
try {
  const ingested = await cap.ingest(resolve(docs))
  log(
    `ingested ${ingested.files} files: ${ingested.chunksIndexed} chunks indexed, ` +
      `${ingested.unchangedDocuments} documents unchanged (${ingested.seconds.toFixed(1)} s)`,
  )
  for (const failure of ingested.failures) {
    log(`  skipped ${failure.source}: ${failure.error}`)
  }

  const found = await cap.search(question, { mode: options.mode, k: Number(options.k) })
  log(`${found.totalResults} sources for "${found.query}" (${found.mode}, ${found.tookMs.toFixed(1)} ms)`)
  for (const result of found.results) {
    log(`  [${result.n}] ${result.score.toFixed(3)} ${result.source ?? result.id}`)
  }

  let usage
  let finishReason
  const messages = groundedMessages(found.query, found.results)
  for await (const event of cap.streamChat(messages, { maxTokens: Number(options['max-tokens']) })) {
    if (event.type === 'content') process.stdout.write(event.delta)
    else if (event.type === 'usage') usage = event.usage
    else if (event.type === 'done') finishReason = event.finishReason
  }
  process.stdout.write('\n')

  const stats = await cap.stats()
  log(
    JSON.stringify({
      query: found.query,
      rag_results: found.totalResults,
      sources: found.results.map((r) => r.source ?? r.id),
      finish_reason: finishReason,
      usage,
      collection: { documents: stats.documents, chunks: stats.chunks },
      total_latency_ms: Math.round(performance.now() - started),
      timestamp: new Date().toISOString(),
    }),
  )
} catch (error) {
  // Every failure carries the library's code: invalid_input, unavailable, timeout, …
  log(`error [${error.code ?? 'unknown'}]: ${error.message}`)
  process.exitCode = error.code === 'invalid_input' ? 2 : 1
} finally {
  cap.close()
}
