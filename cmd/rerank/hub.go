package main

import (
	"context"
	"io"
	"path"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/hub"
)

// hubClient is the Hugging Face Hub client of a command: settings from
// the environment (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN,
// HF_HUB_OFFLINE), and one progress bar per downloaded file on stderr.
func hubClient(c *cli.Context) *hub.Client {
	h := hub.FromEnv()
	h.Progress = downloadBars(c.App.ErrWriter)
	return h
}

// downloadBars draws a byte-counting bar for each file as it downloads.
func downloadBars(w io.Writer) func(hub.Progress) {
	var mu sync.Mutex
	bars := map[string]*progressbar.ProgressBar{}
	return func(p hub.Progress) {
		mu.Lock()
		defer mu.Unlock()
		key := p.Repo + "/" + p.File
		bar := bars[key]
		if bar == nil {
			bar = progressbar.NewOptions64(p.Total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription("download "+path.Join(p.Repo, p.File)),
				progressbar.OptionShowBytes(true),
				progressbar.OptionSetWidth(20),
				progressbar.OptionThrottle(200*time.Millisecond),
				progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
			)
			bars[key] = bar
		}
		bar.Set64(p.Done)
		if p.Done >= p.Total {
			bar.Finish()
			delete(bars, key)
		}
	}
}

// localDir resolves a directory flag that may hold a Hub id.
func localDir(c *cli.Context, ref string, kind hub.Kind) (string, error) {
	return hubClient(c).Dir(context.Background(), ref, kind)
}
