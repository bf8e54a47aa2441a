// The Node face of capibara-server's cross-face test: reads a request file (configuration and
// inputs), runs every input through the binding and prints the results as JSON.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Capibara } = require('../index.js')

// Field names are camelCase in JavaScript and snake_case in the other faces; values must match.
const snake = (value, key = '') => {
  if (Array.isArray(value)) return value.map((item) => snake(item))
  if (value === null || typeof value !== 'object' || key === 'metadata' || key === 'filter') return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, item]) => item !== undefined && item !== null)
      .map(([name, item]) => {
        const named = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
        return [named, snake(item, named)]
      }),
  )
}

const request = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const inputs = request.inputs
const app = await Capibara.open(request.config)
try {
  const ingest = await app.ingestDocuments(inputs.documents)
  const embeddings = await app.embed(inputs.texts)
  const searches = []
  for (const s of inputs.searches) {
    searches.push(await app.search(s.query, { k: s.k, filter: s.filter, mode: s.mode }))
  }
  const chat = (await app.chat(inputs.chat)).content
  process.stdout.write(JSON.stringify(snake({ ingest, embeddings, searches, chat })))
} finally {
  app.close()
}
