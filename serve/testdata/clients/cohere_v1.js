// cohere_v1.js: the official Cohere TypeScript SDK (npm cohere-ai),
// CohereClient.rerank -> POST /v1/rerank, pointed at rerank serve by its
// `environment` (base URL) option.
'use strict';
const { CohereClient } = require('cohere-ai');
const { run } = require('./lib');

run(async (spec) => {
  const co = new CohereClient({ token: spec.api_key, environment: spec.url, maxRetries: 0 });
  const req = { query: spec.query, documents: spec.documents };
  if (spec.model !== undefined) req.model = spec.model;
  if (spec.top_n !== undefined) req.topN = spec.top_n;
  if (spec.return_documents !== undefined) req.returnDocuments = spec.return_documents;
  if (spec.rank_fields !== undefined) req.rankFields = spec.rank_fields;
  if (spec.max_chunks_per_doc !== undefined) req.maxChunksPerDoc = spec.max_chunks_per_doc;
  const res = await co.rerank(req);
  return {
    id: res.id,
    meta: res.meta,
    results: res.results.map((r) => ({ index: r.index, score: r.relevanceScore, document: r.document })),
  };
});
