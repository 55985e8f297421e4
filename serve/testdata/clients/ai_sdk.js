// ai_sdk.js: the Vercel AI SDK (npm ai) with its Cohere provider (npm
// @ai-sdk/cohere): rerank({model: cohere.reranking(id)}) -> POST
// {baseURL}/rerank in Cohere v2's shape, with baseURL = rerank serve's /v2.
'use strict';
const { rerank } = require('ai');
const { createCohere } = require('@ai-sdk/cohere');
const { run } = require('./lib');

run(async (spec) => {
  const cohere = createCohere({ baseURL: spec.url + '/v2', apiKey: spec.api_key });
  const res = await rerank({
    model: cohere.reranking(spec.model),
    query: spec.query,
    documents: spec.documents,
    topN: spec.top_n,
    maxRetries: 0,
  });
  return {
    results: res.ranking.map((r) => ({ index: r.originalIndex, score: r.score, document: { text: r.document } })),
    reranked: res.rerankedDocuments,
  };
});
