// lib.js: what every client script shares. The Go test (serve/clients_test.go)
// writes one JSON spec on stdin and reads one JSON answer from stdout:
//
//   spec:   {"url", "api_key", "model", "query", "documents", "top_n", ...}
//   answer: {"results": [{"index", "score", "document"?}], ...}, or
//           {"error": {"status", "message"}} when the client threw.
'use strict';

function readSpec() {
  return JSON.parse(require('fs').readFileSync(0, 'utf8'));
}

// run calls fn(spec) and prints its answer; a client error is printed
// as {"error": {"status", "message", "name"}} so that the Go test can
// check that the client surfaces the server's status and message.
function run(fn) {
  const spec = readSpec();
  Promise.resolve()
    .then(() => fn(spec))
    .then((out) => process.stdout.write(JSON.stringify(out) + '\n'))
    .catch((err) => {
      const body = err && (err.body || err.responseBody || (err.data && err.data.body));
      process.stdout.write(
        JSON.stringify({
          error: {
            name: err && err.constructor && err.constructor.name,
            status: err && (err.statusCode ?? err.status ?? null),
            message: String((err && err.message) || err),
            body: typeof body === 'string' ? body : body ?? null,
          },
        }) + '\n',
      );
    });
}

module.exports = { run };
