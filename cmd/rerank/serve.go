package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/serve"
)

func init() { register(newServeCommand()) }

func newServeCommand() *cli.Command {
	flags := append(modelFlags(),
		&cli.StringSliceFlag{Name: "adapter", Usage: "serve a LoRA adapter over the one base model as `NAME=DIR` (repeatable); a request's \"model\" field picks it"},
		&cli.StringFlag{Name: "model-id", Usage: "the name the base model answers to (default: the --model directory)"},
		&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "address to listen on"},
		&cli.IntFlag{Name: "port", Value: 8080, Usage: "port to listen on (0: any free port, printed)"},
		&cli.IntFlag{Name: "max-client-batch-size", Value: serve.DefaultMaxClientBatchSize, Usage: "most documents of one request (422 beyond)"},
		&cli.IntFlag{Name: "max-concurrent-requests", Value: serve.DefaultMaxConcurrentRequests, Usage: "most (query, document) pairs admitted at once (429 beyond): bounds memory"},
		&cli.Int64Flag{Name: "payload-limit", Value: serve.DefaultPayloadLimit, Usage: "most bytes of a request body (413 beyond)"},
		&cli.BoolFlag{Name: "auto-truncate", Usage: "TEI: truncate long inputs even when a request sets truncate: false"},
		&cli.StringFlag{Name: "api-key", EnvVars: []string{"RERANK_API_KEY"}, Usage: "require Authorization: Bearer `KEY` (all routes but GET /health, /ping, / and /metrics, as TEI)"},
		&cli.StringSliceFlag{Name: "cors-allow-origin", Usage: "let web pages from `ORIGIN` call the server (repeatable; * for any; default none, where TEI's is any)"},
		&cli.DurationFlag{Name: "shutdown-grace", Value: 60 * time.Second, Usage: "on SIGTERM/SIGINT, how long to finish the requests in flight"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "request log on stderr: text or json"},
	)
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve a model over HTTP: text-embeddings-inference, Cohere v1/v2 and Jina rerank APIs",
		UsageText: "rerank serve --model M [--adapter NAME=DIR ...] [--host 127.0.0.1] [--port 8080]",
		Description: `Routes: POST /rerank (TEI; also POST / and /invocations), POST /predict (TEI,
(query, passage) pairs), POST /v1/rerank (Cohere v1 and Jina), POST /v2/rerank
(Cohere v2), GET /v1/models, GET /health (also /ping and /), GET /info (TEI's
shape), GET /metrics (Prometheus). Clients tested: cohere-ai (v1, v2),
LangChain's CohereRerank, the Vercel AI SDK's Cohere reranking, TEI's and
Jina's documented calls (see the README). Concurrent requests share forward passes (dynamic batching up to
--max-batch-tokens); scores are those of rerank score, bit for bit.

Memory is bounded by --max-concurrent-requests (pairs admitted at once),
--max-client-batch-size (documents per request), --payload-limit (bytes per
body), --max-len (tokens per pair), and --max-batch-tokens (tokens per pass).
SIGTERM or SIGINT stops accepting, answers every request in flight, exits 0.`,
		Flags:  flags,
		Action: runServe,
	}
}

// observePasses sets o.OnPass to hand every forward pass to the server's
// metrics once *srv is set (the server needs the model, the model the
// hook): serve and bench-serve share it.
func observePasses(o *crossencoder.Options, srv **serve.Server) {
	o.OnPass = func(p crossencoder.PassInfo) {
		if s := *srv; s != nil {
			s.ObservePass(p)
		}
	}
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (every input is given by a flag)", c.Args().Slice())
	}
	var logger *slog.Logger
	switch c.String("log-format") {
	case "text":
		logger = slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	case "json":
		logger = slog.New(slog.NewJSONHandler(c.App.ErrWriter, nil))
	default:
		return fmt.Errorf("--log-format %q: want text or json", c.String("log-format"))
	}
	adapters := map[string]string{}
	for _, spec := range c.StringSlice("adapter") {
		name, dir, ok := strings.Cut(spec, "=")
		if !ok || name == "" || dir == "" {
			return fmt.Errorf("--adapter %q: want NAME=DIR", spec)
		}
		if _, dup := adapters[name]; dup {
			return fmt.Errorf("--adapter %q: the name %q is used twice", spec, name)
		}
		adapters[name] = dir
	}
	o, err := modelOptions(c)
	if err != nil {
		return err
	}
	// Adapters read the base's float32 weights, which --int8 drops
	// otherwise.
	o.KeepFloat32 = len(adapters) > 0
	var srv *serve.Server
	observePasses(&o, &srv)
	m, release, err := openModel(c, o)
	if err != nil {
		return err
	}
	defer release()
	so := serve.Options{
		Model: m, ModelID: c.String("model-id"), Adapters: map[string]*crossencoder.Model{},
		MaxClientBatchSize: c.Int("max-client-batch-size"), MaxConcurrentRequests: c.Int("max-concurrent-requests"),
		PayloadLimit: c.Int64("payload-limit"), AutoTruncate: c.Bool("auto-truncate"), APIKey: c.String("api-key"),
		CORSAllowOrigins: c.StringSlice("cors-allow-origin"),
		Logger:           logger, Version: version,
	}
	for name, dir := range adapters {
		v, err := m.WithAdapter(name, dir)
		if err != nil {
			return fmt.Errorf("--adapter %s=%s: %w", name, dir, err)
		}
		so.Adapters[name] = v
	}
	if srv, err = serve.New(so); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(c.String("host"), fmt.Sprint(c.Int("port"))))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger.Info("serving", "addr", ln.Addr().String(), "model", c.String("model"), "adapters", len(adapters),
		"max_batch_tokens", o.MaxBatchTokens, "max_concurrent_requests", so.MaxConcurrentRequests)
	fmt.Fprintf(c.App.Writer, "listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ctx, ln, c.Duration("shutdown-grace")); err != nil {
		return err
	}
	logger.Info("shut down: every accepted request was answered")
	return nil
}
