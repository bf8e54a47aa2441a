// Shared by the test files: the built module, the fake OpenAI-compatible upstream (the
// workspace's `capibara-fake-upstream` binary on a real socket) and configurations over it.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)

/** The native module, as `require('capibara')` gives it. */
export const capibara = require('../index.js')

/** Where the fake upstream binary is: `$CAPIBARA_FAKE_UPSTREAM`, else cargo's debug build. */
function fakeUpstreamBinary() {
  const named = process.env.CAPIBARA_FAKE_UPSTREAM
  if (named) {
    if (!existsSync(named)) {
      throw new Error(`CAPIBARA_FAKE_UPSTREAM=${named} does not exist`)
    }
    return named
  }
  const target = process.env.CARGO_TARGET_DIR ?? fileURLToPath(new URL('../../../target', import.meta.url))
  const built = join(target, 'debug', 'capibara-fake-upstream')
  if (existsSync(built)) {
    return built
  }
  throw new Error(
    'the fake upstream is missing: set CAPIBARA_FAKE_UPSTREAM to the capibara-fake-upstream binary ' +
      '(build it with `cargo build -p capibara-testkit --bin capibara-fake-upstream`)',
  )
}

/**
 * Starts a fake upstream on a free port. `url` is its OpenAI base URL (…/v1); answers are
 * `tokens` Spanish words ("Hola desde el servidor …").
 */
export async function startUpstream({ tokens = 8 } = {}) {
  const child = spawn(fakeUpstreamBinary(), ['--port', '0', '--tokens', String(tokens), '--threads', '2'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout })
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`the fake upstream exited with ${code}`)))
  })
  lines.close()
  if (!first.startsWith('listening on ')) {
    child.kill()
    throw new Error(`the fake upstream did not start: ${first}`)
  }
  return {
    url: `${first.slice('listening on '.length).trim()}/v1`,
    stop() {
      child.kill()
    },
  }
}

/** A fresh data directory, removed by `cleanup()`. */
export function tempDir() {
  const path = mkdtempSync(join(tmpdir(), 'capibara-node-'))
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) }
}

/**
 * A configuration object: chat on `upstreamUrl` (or no chat model when `null`), the local
 * embedding model (or none).
 */
export function config(dataDir, upstreamUrl, { embeddings = false, model = 'fake' } = {}) {
  const config = { storage: { data_dir: dataDir } }
  config.llm =
    upstreamUrl === null
      ? { local_default: false }
      : { backends: [{ kind: 'openai', base_url: upstreamUrl, model }] }
  if (!embeddings) {
    config.embeddings = { kind: 'none' }
  }
  return config
}

/** The words the fake upstream answers with, for `tokens` tokens. */
export function expectedAnswer(tokens) {
  const words = ['Hola ', 'desde ', 'el ', 'servidor ', 'de ', 'prueba ', 'que ', 'responde ', 'sin ', 'pensar ',
    'pero ', 'con ', 'muchas ', 'palabras ', 'bien ', 'medidas. ']
  return Array.from({ length: tokens }, (_, i) => words[i % words.length]).join('')
}

/** Asserts `promise` rejects with an `Error` whose code is `code` and message matches `message`. */
export async function rejectsWith(promise, code, message) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof Error, `an Error, got ${error}`)
    assert.equal(error.code, code, error.message)
    if (message) assert.match(error.message, message)
    return true
  })
}
