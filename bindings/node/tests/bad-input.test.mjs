// Wrong JavaScript types, undefined, hostile structures and huge strings give clear
// `invalid_input` / `too_large` errors naming the argument — never a crash or a hang.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { capibara, config, rejectsWith, startUpstream, tempDir } from './support.mjs'

const { Capibara } = capibara

describe('bad input', () => {
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

  test('messages of the wrong type name what they got', async () => {
    await rejectsWith(cap.chat(), 'invalid_input', /messages: expected a string or an array .* got undefined/)
    await rejectsWith(cap.chat(undefined), 'invalid_input', /got undefined/)
    await rejectsWith(cap.chat(null), 'invalid_input', /got null/)
    await rejectsWith(cap.chat(42), 'invalid_input', /got number/)
    await rejectsWith(cap.chat({ role: 'user', content: 'hola' }), 'invalid_input', /got object/)
    await rejectsWith(cap.chat(() => 'hola'), 'invalid_input', /got function/)
    await rejectsWith(cap.chat(Symbol('hola')), 'invalid_input', /got symbol/)
    await rejectsWith(cap.chat(10n), 'invalid_input', /got bigint/)
  })

  test('a malformed message names its place', async () => {
    await rejectsWith(cap.chat([{ role: 'robot', content: 'hola' }]), 'invalid_input', /messages\[0\]\.role/)
    await rejectsWith(cap.chat([{ role: 'user' }]), 'invalid_input', /messages\[0\].*content/)
    await rejectsWith(cap.chat([{ role: 'user', content: 42 }]), 'invalid_input', /messages\[0\]\.content/)
    await rejectsWith(cap.chat(['hola']), 'invalid_input', /messages\[0\]/)
    await rejectsWith(cap.chat([{ role: 'user', content: 'hola', extra: 1 }]), 'invalid_input', /extra/)
    await rejectsWith(
      cap.chat([{ role: 'user', content: Buffer.from('hola') }]),
      'invalid_input',
      /messages\[0\]\.content: binary data/,
    )
  })

  test('options of the wrong type or with unknown keys are refused', async () => {
    await rejectsWith(cap.chat('hola', 'rápido'), 'invalid_input', /options: expected an object, got string/)
    await rejectsWith(cap.chat('hola', [1]), 'invalid_input', /options: expected an object, got array/)
    await rejectsWith(cap.chat('hola', { maxTokens: 'muchos' }), 'invalid_input', /options\.maxTokens/)
    await rejectsWith(cap.chat('hola', { maxTokens: -1 }), 'invalid_input', /options\.maxTokens/)
    await rejectsWith(cap.chat('hola', { maxTokens: 1.5 }), 'invalid_input', /options\.maxTokens/)
    await rejectsWith(cap.chat('hola', { temperature: Number.NaN }), 'invalid_input', /options\.temperature.*finite/)
    await rejectsWith(cap.chat('hola', { temperature: Infinity }), 'invalid_input', /finite/)
    await rejectsWith(cap.chat('hola', { max_tokenz: 5 }), 'invalid_input', /unknown field `max_tokenz`/)
    await rejectsWith(cap.chat('hola', { model: () => 'x' }), 'invalid_input', /options\.model: a function/)
    // undefined and null options, and undefined option values, are the defaults.
    await cap.chat('hola', undefined)
    await cap.chat('hola', null)
    await cap.chat('hola', { maxTokens: undefined, model: null })
  })

  test('cyclic and absurdly nested structures are refused, not followed', async () => {
    const cyclic = { role: 'user', content: 'hola' }
    cyclic.self = cyclic
    await rejectsWith(cap.chat([cyclic]), 'invalid_input', /nested more than/)
    let deep = {}
    for (let i = 0; i < 10_000; i++) deep = { deep }
    await rejectsWith(cap.ingestDocuments([{ text: 'hola', metadata: deep }]), 'invalid_input', /nested/)
    const sparse = []
    sparse[2 ** 31] = 'hola'
    await rejectsWith(cap.embed(sparse), 'invalid_input', /values in one argument/)
  })

  test('huge strings are too_large, not a crash or a hang', async () => {
    const twoMb = 'palabra '.repeat(256 * 1024)
    await rejectsWith(cap.search(twoMb), 'too_large', /query/)
    await rejectsWith(cap.ask(twoMb), 'too_large', /query/)
    const fiftyMb = 'a'.repeat(50 * 1024 * 1024)
    await rejectsWith(cap.chat(fiftyMb), 'too_large', /bytes/)
    await rejectsWith(cap.chat([{ role: 'user', content: fiftyMb }]), 'too_large')
    // And the instance still answers.
    const answer = await cap.chat('hola')
    assert.ok(answer.content.startsWith('Hola'))
  })

  test('every other method checks its arguments', async () => {
    await rejectsWith(cap.embed(), 'invalid_input', /texts: expected a string or an array of strings, got undefined/)
    await rejectsWith(cap.embed([1, 2]), 'invalid_input', /texts\[0\]/)
    await rejectsWith(cap.embed({}), 'invalid_input', /got object/)
    await rejectsWith(cap.search(), 'invalid_input', /query: expected a string, got undefined/)
    await rejectsWith(cap.search(42), 'invalid_input', /query: expected a string, got number/)
    await rejectsWith(cap.search('hola', { k: 'diez' }), 'invalid_input', /options\.k/)
    await rejectsWith(cap.search('hola', { mode: 'rapidísimo' }), 'invalid_input', /options\.mode/)
    await rejectsWith(cap.search('hola', { filter: { like: 1 } }), 'invalid_input', /options\.filter/)
    await rejectsWith(cap.ask(undefined), 'invalid_input', /question: expected a string/)
    await rejectsWith(cap.ask('hola', { conversationId: 7 }), 'invalid_input', /options\.conversationId/)
    await rejectsWith(cap.ingest(), 'invalid_input', /paths: expected a path or an array of paths, got undefined/)
    await rejectsWith(cap.ingest([42]), 'invalid_input', /paths\[0\]/)
    await rejectsWith(cap.ingest([]), 'invalid_input', /at least one/)
    await rejectsWith(cap.ingestDocuments(), 'invalid_input', /documents: expected an array/)
    await rejectsWith(cap.ingestDocuments('hola'), 'invalid_input', /got string/)
    await rejectsWith(cap.ingestDocuments([{}]), 'invalid_input', /documents\[0\].*text/)
    await rejectsWith(cap.ingestDocuments([{ text: 'hola', metadata: 'x' }]), 'invalid_input', /documents\[0\]\.metadata/)
    await rejectsWith(cap.serve(42), 'invalid_input', /host: expected a string, got number/)
    await rejectsWith(cap.serve('127.0.0.1', 70000), 'invalid_input', /port/)
    await rejectsWith(cap.serve('127.0.0.1', -1), 'invalid_input', /port/)
    assert.throws(() => cap.streamChat(42), (error) => error.code === 'invalid_input' && /got number/.test(error.message))
    assert.throws(
      () => cap.streamChat('hola', { maxTokens: 'x' }),
      (error) => error.code === 'invalid_input' && /options\.maxTokens/.test(error.message),
    )
  })

  test('methods called on the wrong receiver throw instead of crashing', () => {
    assert.throws(() => Capibara.prototype.chat.call({}, 'hola'))
    assert.throws(() => Capibara.prototype.close.call(undefined))
  })
})
