// langchain_cohere.js: LangChain JS's Cohere reranker (npm @langchain/cohere,
// CohereRerank), given a client of the cohere-ai version it depends on
// (its own node_modules copy, cohere-ai 7.x) whose environment is rerank
// serve: the way LangChain documents pointing CohereRerank at another
// endpoint. compressDocuments returns LangChain Documents, best first,
// with metadata.relevanceScore.
'use strict';
const path = require('path');
const { createRequire } = require('module');
const { CohereRerank } = require('@langchain/cohere');
const { Document } = require('@langchain/core/documents');
const { run } = require('./lib');

// The cohere-ai that @langchain/cohere itself imports.
const lcRequire = createRequire(require.resolve('@langchain/cohere'));
const { CohereClient } = lcRequire('cohere-ai');

run(async (spec) => {
  const client = new CohereClient({ token: spec.api_key, environment: spec.url, maxRetries: 0 });
  const reranker = new CohereRerank({ client, model: spec.model, topN: spec.top_n });
  const docs = spec.documents.map((text, i) => new Document({ pageContent: text, metadata: { i } }));
  const out = await reranker.compressDocuments(docs, spec.query);
  const ranked = await reranker.rerank(spec.documents, spec.query);
  return {
    cohere_ai_version: lcRequire('cohere-ai/package.json').version,
    results: out.map((d) => ({ index: d.metadata.i, score: d.metadata.relevanceScore, document: { text: d.pageContent } })),
    rerank: ranked.map((r) => ({ index: r.index, score: r.relevanceScore })),
  };
});
