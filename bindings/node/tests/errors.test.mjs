// Error mapping: library errors reach JavaScript as `Error`s with the library's `code` (plus
// `status` for upstream errors), a closed instance answers `closed`, and configuration mistakes
// are `invalid_input`.

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import { capibara, config, rejectsWith, startUpstream, tempDir } from './support.mjs'

const { Capibara } = capibara

describe('error mapping', () => {
  let upstream
  let dir
  let cap

  before(async () => {
    upstream = await startUpstream()
    dir = tempDir()
    cap = await Capibara.open(config(join(dir.path, 'chat'), upstream.url))
  })

  after(() => {
    cap?.close()
    upstream?.stop()
    dir?.cleanup()
  })

  test('the library refusing a request is invalid_input', async () => {
    await rejectsWith(cap.chat([]), 'invalid_input', /messages must not be empty/)
    await rejectsWith(cap.chat('   '), 'invalid_input', /empty/)
    await rejectsWith(cap.chat('hola', { temperature: 5 }), 'invalid_input', /temperature/)
    await rejectsWith(cap.chat('hola', { maxTokens: 0 }), 'invalid_input', /max_tokens/)
    await rejectsWith(cap.chat('hola', { stop: [''] }), 'invalid_input', /stop/)
  })

  test('no chat model is unavailable; no embedding model too', async () => {
    const bare = await Capibara.open(config(join(dir.path, 'bare'), null))
    try {
      await rejectsWith(bare.chat('hola'), 'unavailable', /chat model/)
      await rejectsWith(bare.ask('¿hola?'), 'unavailable')
      await rejectsWith(bare.embed('hola'), 'unavailable', /embedding model/)
      await rejectsWith(bare.search('hola'), 'unavailable')
      await rejectsWith(bare.stats(), 'unavailable')
    } finally {
      bare.close()
    }
  })

  test('an upstream error status comes back as upstream_error with its status', async () => {
    const failing = createServer((request, response) => {
      request.resume()
      response.writeHead(400, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ error: { message: 'modelo desconocido', type: 'invalid_request_error' } }))
    })
    await new Promise((resolve) => failing.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${failing.address().port}/v1`
    const broken = await Capibara.open(config(join(dir.path, 'broken'), url))
    try {
      await assert.rejects(broken.chat('hola'), (error) => {
        assert.ok(error instanceof Error)
        assert.equal(error.code, 'upstream_error', error.message)
        assert.equal(error.status, 400)
        assert.match(error.message, /modelo desconocido/)
        return true
      })
    } finally {
      broken.close()
      failing.close()
    }
  })

  test('a stream that fails rejects its first read with the mapped error', async () => {
    const bare = await Capibara.open(config(join(dir.path, 'bare-stream'), null))
    try {
      const events = bare.streamChat('hola')
      await rejectsWith(
        (async () => {
          for await (const event of events) {
            assert.fail(`no event expected, got ${JSON.stringify(event)}`)
          }
        })(),
        'unavailable',
      )
    } finally {
      bare.close()
    }
  })

  test('after close() every call answers closed; close() twice is fine', async () => {
    const closing = await Capibara.open(config(join(dir.path, 'closing'), upstream.url))
    assert.equal(closing.closed, false)
    await closing.chat('hola')
    closing.close()
    closing.close()
    assert.equal(closing.closed, true)
    await rejectsWith(closing.chat('hola'), 'closed', /closed/)
    await rejectsWith(closing.embed('hola'), 'closed')
    await rejectsWith(closing.search('hola'), 'closed')
    await rejectsWith(closing.ask('hola'), 'closed')
    await rejectsWith(closing.ingest('/tmp'), 'closed')
    await rejectsWith(closing.ingestDocuments([{ text: 'hola' }]), 'closed')
    await rejectsWith(closing.stats(), 'closed')
    await rejectsWith(closing.serve('127.0.0.1', 0), 'closed')
    assert.throws(() => closing.streamChat('hola'), (error) => error instanceof Error && error.code === 'closed')
    // Wrong arguments on a closed instance still say closed, not invalid_input.
    await rejectsWith(closing.chat(42), 'closed')
  })

  test('calls under way when close() is called still finish', async () => {
    const closing = await Capibara.open(config(join(dir.path, 'inflight'), upstream.url))
    const pending = closing.chat('hola', { model: 'bench-10x20ms' })
    closing.close()
    const answer = await pending
    assert.ok(answer.content.startsWith('Hola'))
  })

  test('configuration mistakes are invalid_input', async () => {
    await rejectsWith(Capibara.open(42), 'invalid_input', /config/)
    await rejectsWith(Capibara.open([]), 'invalid_input', /config/)
    await rejectsWith(Capibara.open(join(dir.path, 'missing.toml')), 'invalid_input', /does not exist/)
    await rejectsWith(
      Capibara.open({ storage: { data_dir: join(dir.path, 'x') }, llm: { backends: [{ kind: 'nope' }] } }),
      'invalid_input',
      /configuration/,
    )
  })

  test('Capibara cannot be constructed directly', () => {
    assert.throws(() => new Capibara())
  })
})
