// cohere_v2.js: the official Cohere TypeScript SDK (npm cohere-ai),
// CohereClientV2.rerank -> POST /v2/rerank, pointed at rerank serve by
// its `environment` (base URL) option.
'use strict';
const { CohereClientV2 } = require('cohere-ai');
const { run } = require('./lib');

run(async (spec) => {
  const co = new CohereClientV2({ token: spec.api_key, environment: spec.url, maxRetries: 0 });
  const req = { model: spec.model, query: spec.query, documents: spec.documents };
  if (spec.top_n !== undefined) req.topN = spec.top_n;
  if (spec.max_tokens_per_doc !== undefined) req.maxTokensPerDoc = spec.max_tokens_per_doc;
  if (spec.priority !== undefined) req.priority = spec.priority;
  const res = await co.rerank(req);
  return {
    id: res.id,
    meta: res.meta,
    results: res.results.map((r) => ({ index: r.index, score: r.relevanceScore })),
  };
});
