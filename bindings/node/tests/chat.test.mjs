// Chat against the fake OpenAI-compatible upstream: whole answers, streamed answers, options.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { capibara, config, expectedAnswer, startUpstream, tempDir } from './support.mjs'

const { Capibara } = capibara
const TOKENS = 8

describe('chat', () => {
  let upstream
  let dir
  let cap

  before(async () => {
    upstream = await startUpstream({ tokens: TOKENS })
    dir = tempDir()
    cap = await Capibara.open(config(dir.path, upstream.url))
  })

  after(() => {
    cap?.close()
    upstream?.stop()
    dir?.cleanup()
  })

  test('a text is one user message and gets a whole answer', async () => {
    const answer = await cap.chat('¿Qué tal?')
    assert.equal(answer.content, expectedAnswer(TOKENS))
    assert.equal(answer.model, 'fake')
    assert.equal(answer.finishReason, 'stop')
    assert.equal(typeof answer.backend, 'string')
    assert.deepEqual(answer.toolCalls, [])
  })

  test('a list of messages with options gets a whole answer', async () => {
    const answer = await cap.chat(
      [
        { role: 'system', content: 'Responde en español.' },
        { role: 'user', content: 'Hola' },
        { role: 'assistant', content: 'Hola, ¿en qué te ayudo?' },
        { role: 'user', content: 'Cuéntame algo' },
      ],
      { maxTokens: 64, temperature: 0.2, topP: 0.9, stop: ['###'], seed: 7, model: 'fake' },
    )
    assert.ok(answer.content.startsWith('Hola desde el servidor'), answer.content)
  })

  test('streamed content concatenates to the whole answer and done comes last, once', async () => {
    const whole = await cap.chat('Hola')
    const events = []
    for await (const event of cap.streamChat('Hola')) {
      events.push(event)
    }
    const content = events.filter((e) => e.type === 'content').map((e) => e.delta)
    assert.ok(content.length >= TOKENS, `streamed token by token: ${JSON.stringify(events)}`)
    assert.equal(content.join(''), whole.content)
    assert.equal(events.at(-1).type, 'done')
    assert.equal(events.at(-1).finishReason, 'stop')
    assert.equal(events.filter((e) => e.type === 'done').length, 1)
    for (const event of events) {
      assert.ok(['content', 'reasoning', 'tool_call', 'usage', 'done'].includes(event.type), event.type)
    }
  })

  test('reasoning arrives as its own events, never mixed into content', async () => {
    const events = []
    for await (const event of cap.streamChat('Hola', { model: 'reasoning-fake' })) {
      events.push(event)
    }
    const reasoning = events.filter((e) => e.type === 'reasoning').map((e) => e.delta).join('')
    const content = events.filter((e) => e.type === 'content').map((e) => e.delta).join('')
    assert.equal(reasoning, 'El usuario saluda. Respondo.')
    assert.equal(content, expectedAnswer(TOKENS))
    const whole = await cap.chat('Hola', { model: 'reasoning-fake' })
    assert.equal(whole.reasoning, reasoning)
    assert.equal(whole.content, content)
  })

  test('leaving the loop early stops the stream', async () => {
    const events = cap.streamChat('Hola', { model: 'bench-200x5ms' })
    let seen = 0
    for await (const event of events) {
      if (event.type === 'content' && ++seen === 3) {
        break
      }
    }
    assert.equal(seen, 3)
    // The iterator is finished: a further read ends at once.
    const next = await events[Symbol.asyncIterator]().next()
    assert.equal(next.done, true)
  })

  test('close() ends a stream', async () => {
    const events = cap.streamChat('Hola', { model: 'bench-200x5ms' })
    const iterator = events[Symbol.asyncIterator]()
    const first = await iterator.next()
    assert.equal(first.done, false)
    events.close()
    const rest = []
    for (;;) {
      const { value, done } = await iterator.next()
      if (done) break
      rest.push(value)
    }
    assert.ok(rest.length < 200, `stopped early: ${rest.length} events after close`)
  })
})
