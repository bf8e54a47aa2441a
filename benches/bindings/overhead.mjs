// Per-call cost of the Node binding against the same operation over the local HTTP server
// (`capibara serve`, a separate process, keep-alive fetch). Run by benches/bindings/run, after
// overhead.py (which measured the library's own time); writes its medians as JSON.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const require = createRequire(import.meta.url)
const { Capibara } = require('../../bindings/node/index.js')

const TEXT = '¿Dónde vive el capibara?'
const QUERY = '¿Cuál es la capital de Francia?'
const { values: args } = parseArgs({
  options: {
    capibara: { type: 'string' },
    work: { type: 'string' },
    corpus: { type: 'string' },
    calls: { type: 'string', default: '2000' },
    port: { type: 'string', default: '5072' },
    out: { type: 'string' },
  },
})
const calls = Number(args.calls)

async function medianUs(call) {
  for (let i = 0; i < Math.max(calls / 10, 1); i++) await call()
  const samples = []
  for (let i = 0; i < calls; i++) {
    const started = process.hrtime.bigint()
    await call()
    samples.push(Number(process.hrtime.bigint() - started) / 1000)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)]
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
cpSync(dataDir, join(args.work, 'server-data'), { recursive: true })

// A fresh composition (the closed one released the store directory).
app = await Capibara.open(bindingConfig)
const results = { calls }
results.node_us = {
  embed_us: await medianUs(() => app.embed(TEXT)),
  search_lexical_us: await medianUs(() => app.search(QUERY, { k: 10, mode: 'lexical' })),
  search_hybrid_us: await medianUs(() => app.search(QUERY, { k: 10, mode: 'hybrid' })),
}
app.close()

const server = spawn(args.capibara, ['--config', serverConfig, 'serve'], { stdio: ['ignore', 'ignore', 'ignore'] })
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
  results.http_us = {
    embed_us: await medianUs(() => post('/api/v1/embeddings', { text: TEXT })),
    search_lexical_us: await medianUs(() => post('/api/v1/rag/search', { query: QUERY, k: 10, mode: 'lexical' })),
    search_hybrid_us: await medianUs(() => post('/api/v1/rag/search', { query: QUERY, k: 10, mode: 'hybrid' })),
  }
} finally {
  server.kill()
}
writeFileSync(args.out, JSON.stringify(results, null, 2))
console.log(JSON.stringify(results, null, 2))
