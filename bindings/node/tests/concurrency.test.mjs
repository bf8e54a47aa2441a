// Calls run on the addon's runtime, not on the event loop: 100 concurrent chats complete while a
// timer keeps ticking.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { capibara, config, expectedAnswer, startUpstream, tempDir } from './support.mjs'

const { Capibara } = capibara

describe('concurrency', () => {
  let upstream
  let dir
  let cap

  before(async () => {
    upstream = await startUpstream()
    dir = tempDir()
    cap = await Capibara.open(config(dir.path, upstream.url))
  })

  after(() => {
    cap?.close()
    upstream?.stop()
    dir?.cleanup()
  })

  test('100 concurrent chats complete and the event loop keeps ticking', async () => {
    let ticks = 0
    const ticker = setInterval(() => {
      ticks++
    }, 5)
    const started = performance.now()
    try {
      // Each answer takes ~300 ms upstream (16 words, 20 ms apart).
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) => cap.chat(`Pregunta número ${i}`, { model: 'bench-16x20ms' })),
      )
      const elapsed = performance.now() - started
      assert.equal(answers.length, 100)
      for (const answer of answers) {
        assert.equal(answer.content, expectedAnswer(16))
      }
      // Concurrent, not one after another (100 × 300 ms would be 30 s).
      assert.ok(elapsed < 15_000, `took ${elapsed} ms`)
      // A blocked loop would not have ticked while the answers were produced.
      assert.ok(ticks >= 20, `the timer ticked ${ticks} times in ${elapsed.toFixed(0)} ms`)
    } finally {
      clearInterval(ticker)
    }
  })

  test('100 concurrent streams complete', async () => {
    const read = async (i) => {
      let text = ''
      for await (const event of cap.streamChat(`Pregunta ${i}`, { model: 'bench-8x10ms' })) {
        if (event.type === 'content') text += event.delta
      }
      return text
    }
    const texts = await Promise.all(Array.from({ length: 100 }, (_, i) => read(i)))
    for (const text of texts) {
      assert.equal(text, expectedAnswer(8))
    }
  })
})
