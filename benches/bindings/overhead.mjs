// Per-call cost of the Node binding against the same operation over the local HTTP server
// (`capibara serve`, a separate process, keep-alive fetch), with the library's own calls
// (capibara-operation-timing --serve) as the floor. Run by benches/bindings/run; writes its
// medians as JSON. The three are measured in alternating rounds, so all see the same machine.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
const { Capibara } = require('../../bindings/node/index.js')

const TEXT = '¿Dónde vive el capibara?'
const QUERY = '¿Cuál es la capital de Francia?'
const { values: args } = parseArgs({
  options: {
    capibara: { type: 'string' },
    timing: { type: 'string' },
    work: { type: 'string' },
    corpus: { type: 'string' },
    calls: { type: 'string', default: '2000' },
    port: { type: 'string', default: '5072' },
    out: { type: 'string' },
  },
})
const calls = Number(args.calls)

const ROUNDS = 10

/** A batch of `n` calls, each timed in µs. */
function timed(call) {
  return async (n) => {
    const taken = []
    for (let i = 0; i < n; i++) {
      const started = process.hrtime.bigint()
      await call()
      taken.push(Number(process.hrtime.bigint() - started) / 1000)
    }
    return taken
  }
}

/** Median µs per call of each cell, measured in ROUNDS alternating rounds after a warm-up. */
async function interleavedMedians(cells) {
  for (const batch of Object.values(cells)) await batch(Math.max(calls / 10, 1))
  const samples = Object.fromEntries(Object.keys(cells).map((name) => [name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, batch] of Object.entries(cells)) {
      samples[name].push(...(await batch(Math.max(calls / ROUNDS, 1))))
    }
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, taken]) => {
      taken.sort((a, b) => a - b)
      return [name, taken[Math.floor(taken.length / 2)]]
    }),
  )
}

/** capibara-operation-timing --serve: the library's own calls, in batches asked for on stdin. */
function library(configPath) {
  const child = spawn(args.timing, ['--config', configPath, '--text', TEXT, '--query', QUERY, '--serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    batch: (operation) => async (n) => {
      child.stdin.write(`${operation} ${n}\n`)
      const { value, done } = await lines.next()
      if (done) throw new Error('capibara-operation-timing exited')
      return JSON.parse(value)
    },
    close: () => child.stdin.end(),
  }
}

function config(dataDir) {
  return `[server]\nport = ${args.port}\n\n[storage]\ndata_dir = "${dataDir}"\n\n[llm]\nlocal_default = false\n\n[embeddings]\nkind = "local"\nthreads = 1\n`
}

rmSync(args.work, { recursive: true, force: true })
mkdirSync(args.work, { recursive: true })
const bindingConfig = join(args.work, 'binding.toml')
const serverConfig = join(args.work, 'server.toml')
writeFileSync(bindingConfig, config(join(args.work, 'binding-data')))
writeFileSync(serverConfig, config(join(args.work, 'server-data')))

let app = await Capibara.open(bindingConfig)
await app.ingest(args.corpus)
app.close()
// A closed composition's database pool finishes closing in the background: copy once SQLite's
// closing checkpoint has removed its -wal file.
const dataDir = join(args.work, 'binding-data')
for (let i = 0; i < 300 && readdirSync(dataDir).some((name) => name.endsWith('.db-wal')); i++) {
  await new Promise((resolve) => setTimeout(resolve, 100))
}
// The server and the library's timing process get copies (a store directory has one user at a time).
const libraryConfig = join(args.work, 'library.toml')
writeFileSync(libraryConfig, config(join(args.work, 'library-data')))
for (const copy of ['server-data', 'library-data']) cpSync(dataDir, join(args.work, copy), { recursive: true })

// A fresh composition (the closed one released the store directory), beside the server.
app = await Capibara.open(bindingConfig)
const server = spawn(args.capibara, ['--config', serverConfig, 'serve'], { stdio: ['ignore', 'ignore', 'ignore'] })
const floor = library(libraryConfig)
const results = { calls, rounds: ROUNDS }
try {
  const base = `http://127.0.0.1:${args.port}`
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) break
    } catch {}
    if (i > 1200) throw new Error('capibara serve did not come up')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const post = async (path, body) => {
    const response = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (!response.ok) throw new Error(`${path}: ${response.status}`)
    return response.json()
  }
  const operations = [
    ['embed_us', () => app.embed(TEXT), '/api/v1/embeddings', { text: TEXT }],
    [
      'search_lexical_us',
      () => app.search(QUERY, { k: 10, mode: 'lexical' }),
      '/api/v1/rag/search',
      { query: QUERY, k: 10, mode: 'lexical' },
    ],
    [
      'search_hybrid_us',
      () => app.search(QUERY, { k: 10, mode: 'hybrid' }),
      '/api/v1/rag/search',
      { query: QUERY, k: 10, mode: 'hybrid' },
    ],
  ]
  const cells = {}
  for (const [key, call, path, body] of operations) {
    cells[`library ${key}`] = floor.batch(key)
    cells[`node ${key}`] = timed(call)
    cells[`http ${key}`] = timed(() => post(path, body))
  }
  const medians = await interleavedMedians(cells)
  for (const face of ['library', 'node', 'http']) {
    results[`${face}_us`] = Object.fromEntries(
      Object.entries(medians)
        .filter(([name]) => name.startsWith(`${face} `))
        .map(([name, value]) => [name.split(' ')[1], value]),
    )
  }
} finally {
  floor.close()
  server.kill()
  app.close()
}
writeFileSync(args.out, JSON.stringify(results, null, 2))
console.log(JSON.stringify(results, null, 2))
