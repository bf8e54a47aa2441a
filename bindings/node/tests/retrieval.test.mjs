// Embeddings, ingestion, search and RAG answers with the local embedding model (all-MiniLM-L6-v2
// from the model store, as the server's tests use it), chat on the fake upstream, and the HTTP
// server started in process.

import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { capibara, config, expectedAnswer, startUpstream, tempDir } from './support.mjs'

const { Capibara } = capibara

const norm = (vector) => Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0))

const DOCUMENTS = [
  {
    id: 'capibara',
    title: 'El capibara',
    text: 'El capibara es el roedor más grande del mundo. Vive en grupos cerca de ríos y lagunas de Sudamérica.',
    metadata: { lang: 'es', year: 2021, tema: 'animales' },
  },
  {
    id: 'paella',
    title: 'La paella',
    text: 'La paella valenciana se cocina con arroz, azafrán, pollo y judías verdes en una paellera amplia.',
    metadata: { lang: 'es', year: 2019, tema: 'cocina' },
  },
  {
    id: 'rust',
    title: 'Rust',
    text: 'Rust is a systems programming language focused on memory safety without a garbage collector.',
    metadata: { lang: 'en', year: 2023, tema: 'software' },
  },
]

describe('retrieval with the local embedding model', () => {
  let upstream
  let dir
  let cap

  before(async () => {
    upstream = await startUpstream()
    dir = tempDir()
    cap = await Capibara.open(config(join(dir.path, 'data'), upstream.url, { embeddings: true }))
  })

  after(() => {
    cap?.close()
    upstream?.stop()
    dir?.cleanup()
  })

  test('a text embeds to one unit vector, a list to one per text', async () => {
    const one = await cap.embed('¿Dónde está la biblioteca?')
    assert.equal(one.length, 384)
    assert.ok(Math.abs(norm(one) - 1) < 1e-4, `norm ${norm(one)}`)
    const many = await cap.embed(['¿Dónde está la biblioteca?', 'The library is closed on Sundays.'])
    assert.equal(many.length, 2)
    assert.equal(many[0].length, 384)
    for (let i = 0; i < 384; i++) assert.ok(Math.abs(many[0][i] - one[i]) < 1e-5)
  })

  test('documents are ingested, searched in every mode, filtered and counted', async () => {
    const summary = await cap.ingestDocuments(DOCUMENTS)
    assert.equal(summary.documents, 3)
    assert.ok(summary.chunksIndexed >= 3, JSON.stringify(summary))
    assert.deepEqual(summary.failures, [])

    const again = await cap.ingestDocuments(DOCUMENTS)
    assert.equal(again.unchangedDocuments, 3)
    assert.equal(again.chunksIndexed, 0)

    for (const mode of ['mini', 'full', 'guided', 'lexical', 'dense', 'hybrid']) {
      const found = await cap.search('¿Cuál es el roedor más grande?', { mode, k: 2 })
      assert.equal(found.mode, mode)
      assert.ok(found.totalResults >= 1, `${mode}: ${JSON.stringify(found)}`)
      assert.equal(found.results.length, found.totalResults)
      assert.equal(found.results[0].n, 1)
      assert.equal(found.results[0].title, 'El capibara', `${mode}: ${JSON.stringify(found.results[0])}`)
      assert.equal(found.results[0].source, 'api')
      assert.equal(found.results[0].metadata.tema, 'animales')
      assert.equal(typeof found.tookMs, 'number')
    }

    const cooking = await cap.search('arroz', {
      mode: 'hybrid',
      filter: { and: [{ eq: { field: 'lang', value: 'es' } }, { range: { field: 'year', lte: 2020 } }] },
    })
    assert.deepEqual(
      cooking.results.map((r) => r.metadata.tema),
      cooking.results.map(() => 'cocina'),
    )
    assert.ok(cooking.totalResults >= 1)

    const stats = await cap.stats()
    assert.equal(stats.documents, 3)
    assert.equal(stats.indexedDocuments, 3)
    assert.ok(stats.chunks >= 3)
    assert.equal(stats.vectors, stats.chunks)
    assert.match(stats.embeddingModel, /MiniLM/i)
  })

  test('files and folders are ingested and found', async () => {
    const docs = join(dir.path, 'docs')
    mkdirSync(join(docs, 'guia'), { recursive: true })
    writeFileSync(join(docs, 'instalar.md'), '# Instalar\n\nPara instalar Capibara ejecuta `make run` en la raíz del repositorio.\n')
    writeFileSync(join(docs, 'guia', 'voces.txt'), 'Las voces sintéticas en español se configuran en la sección tts.\n')
    const summary = await cap.ingest(docs)
    assert.equal(summary.files, 2, JSON.stringify(summary))
    assert.ok(summary.chunksIndexed >= 2)
    const found = await cap.search('¿Cómo instalo Capibara?', { mode: 'hybrid', k: 1 })
    assert.match(found.results[0].source, /instalar\.md$/)

    const again = await cap.ingest([join(docs, 'instalar.md')])
    assert.equal(again.files, 1)
    assert.equal(again.unchangedDocuments, 1)
    await assert.rejects(cap.ingest(join(docs, 'no-existe.md')), (error) => {
      assert.equal(error.code, 'not_found', error.message)
      assert.match(error.message, /no-existe\.md/)
      return true
    })
  })

  test('ask answers from the sources it was given', async () => {
    const answer = await cap.ask('¿Qué es el capibara?', { mode: 'hybrid', maxTokens: 64 })
    assert.equal(answer.query, '¿Qué es el capibara?')
    assert.equal(answer.answer, expectedAnswer(8))
    assert.ok(answer.sources.length >= 1)
    assert.equal(answer.sources[0].n, 1)
    assert.equal(answer.retrieval.mode, 'hybrid')
    assert.match(answer.conversationId, /^[0-9a-f-]{36}$/)
    assert.equal(typeof answer.processingTimeMs, 'number')
    assert.ok(!Number.isNaN(Date.parse(answer.timestamp)))

    const followUp = await cap.ask('¿Y dónde vive?', { conversationId: answer.conversationId })
    assert.equal(followUp.conversationId, answer.conversationId)
  })

  test('serve() starts the HTTP server over the same composition', async () => {
    const server = await cap.serve('127.0.0.1', 0)
    try {
      assert.equal(server.host, '127.0.0.1')
      assert.ok(server.port > 0)
      assert.equal(server.url, `http://127.0.0.1:${server.port}`)
      assert.equal(server.running, true)
      const health = await fetch(`${server.url}/api/health`)
      assert.equal(health.status, 200)
      const chat = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'fake', messages: [{ role: 'user', content: 'Hola' }] }),
      })
      assert.equal(chat.status, 200)
      const body = await chat.json()
      assert.equal(body.choices[0].message.content, expectedAnswer(8))
    } finally {
      await server.close()
    }
    assert.equal(server.running, false)
    await server.wait()
  })
})
