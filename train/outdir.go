package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile is the lock of a run in its output directory: an exclusive
// flock held while the run writes there, with the holder's process id.
const LockFile = ".rerank-train.lock"

// DirLock is a held output-directory lock.
type DirLock struct {
	f    *os.File
	path string
}

// LockOutputDir takes the exclusive lock of dir (creating dir), so that
// two runs never write into one directory. It fails at once, naming the
// holder's pid, when another process holds it. The lock goes with the
// process: a killed run leaves none behind. Unlock removes the lock file,
// so that a finished output directory (which users upload) holds only
// what the run wrote.
func LockOutputDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fieldErr("output_dir", "%v", err)
	}
	path := filepath.Join(dir, LockFile)
	for range 100 {
		l, retry, err := lockOnce(dir, path)
		if !retry {
			return l, err
		}
	}
	return nil, fieldErr("output_dir", "lock %s: the lock file keeps being replaced by other runs: try again", path)
}

// lockOnce opens and locks path. It asks for a retry when the file it
// locked is no longer the one at path: its holder removed it on Unlock
// between this open and this lock, and a lock on the removed file would
// exclude nobody.
func lockOnce(dir, path string) (*DirLock, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fieldErr("output_dir", "lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		data, _ := os.ReadFile(path)
		f.Close()
		holder := "another process"
		if pid := strings.TrimSpace(string(data)); pid != "" {
			holder = "process " + pid
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, fieldErr("output_dir", "%s is in use by %s (another rerank train): wait for it to finish, or choose another {output_dir}", dir, holder)
		}
		return nil, false, fieldErr("output_dir", "lock %s: %v", path, err)
	}
	held, err1 := f.Stat()
	now, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(held, now) {
		f.Close()
		return nil, true, nil
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f, path: path}, false, nil
}

// Unlock removes the lock file and releases the lock. The file goes
// while the lock is held: a run that opened it meanwhile finds, once it
// has the lock, that the file is no longer at its path, and starts over.
func (l *DirLock) Unlock() {
	if l != nil && l.f != nil {
		_ = os.Remove(l.path)
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// isTemp reports whether name is a temporary of an unfinished write: a
// checkpoint directory being written (.checkpoint-N.tmp-*) or a file of
// internal/atomicfile (.NAME.tmp-*).
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// removeStaleTemps deletes the temporaries that writers killed mid-write
// left in dir. Only the holder of dir's lock may call it: no other
// writer is alive then.
func removeStaleTemps(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if isTemp(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return removed, err
			}
			removed = append(removed, e.Name())
		}
	}
	return removed, nil
}

// runFiles are the files of a run's output directory that a fresh run
// may find there without overwriting anything: its lock, the encoding
// cache of earlier versions (keyed by its inputs; now in Args.CacheDir)
// and the arguments of a run that stopped before its first step.
var runFiles = []string{LockFile, EncodingCacheFile, ArgsFile}

// outputFiles are the files a run writes at the top level of its output
// directory besides checkpoints: what --overwrite-output-dir removes.
var outputFiles = []string{MetricsFile, ArgsFile, EncodingCacheFile, "config.json", "model.safetensors", "model.safetensors.index.json",
	"adapter_config.json", "adapter_model.safetensors",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "sentencepiece.bpe.model", "added_tokens.json"}

// checkFreshOutputDir refuses to start a fresh run in a directory that
// holds another run's results (a model, checkpoints, metrics or any other
// file): it would overwrite them, or mix two runs.
func checkFreshOutputDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fieldErr("output_dir", "%v", err)
	}
	var held []string
	for _, e := range ents {
		n := e.Name()
		if slices.Contains(runFiles, n) || isTemp(n) {
			continue
		}
		if n == MetricsFile {
			if fi, err := e.Info(); err == nil && fi.Size() == 0 {
				continue
			}
		}
		held = append(held, n)
	}
	if len(held) == 0 {
		return nil
	}
	if cks, _ := Checkpoints(dir); len(cks) > 0 {
		return fieldErr("output_dir", "%s holds checkpoints of an earlier run (%s): continue it with {resume_from_checkpoint} latest, start over with {overwrite_output_dir}, or use another {output_dir}",
			dir, filepath.Base(cks[len(cks)-1]))
	}
	sort.Strings(held)
	what := strings.Join(held[:min(len(held), 4)], ", ")
	if len(held) > 4 {
		what += fmt.Sprintf(" and %d more", len(held)-4)
	}
	return fieldErr("output_dir", "%s is not empty (it holds %s): continue its run with {resume_from_checkpoint} latest, replace it with {overwrite_output_dir}, or use another {output_dir}",
		dir, what)
}

// clearOutputDir removes what a run writes at the top level of dir (its
// checkpoints, metrics, arguments, model or adapter and tokenizer files),
// and nothing else: --overwrite-output-dir starts over without mixing the
// earlier run's files into the new one.
func clearOutputDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fieldErr("overwrite_output_dir", "%v", err)
	}
	for _, e := range ents {
		n := e.Name()
		step, isCk := strings.CutPrefix(n, checkpointPre)
		if _, err := strconv.Atoi(step); (isCk && err == nil) || slices.Contains(outputFiles, n) {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fieldErr("overwrite_output_dir", "%v", err)
			}
		}
	}
	return nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(fa, fb)
	}
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

// resumeFree are the arguments a resumed run may change without
// --resume-override: where and how often it logs, saves and evaluates,
// and how it computes (same results). Batch size, steps and seed have
// checks of their own (sampler state, total steps, seed).
var resumeFree = []string{"output_dir", "cache_dir", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
	"dev_candidates", "dev_beir", "dev_split", "dev_top_k", "dev_max_queries", "per_device_eval_batch_size",
	"resume_from_checkpoint", "resume_override", "overwrite_output_dir", "gradient_checkpointing", "attention",
	"per_device_train_batch_size", "max_steps", "num_train_epochs", "seed"}

// checkResumeArgs compares args with the training_args.json of the
// checkpoint dir and refuses changes that change the run, except those
// args.ResumeOverride names. A checkpoint without the file passes.
func checkResumeArgs(dir string, args Args) error {
	data, err := os.ReadFile(filepath.Join(dir, ArgsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var was map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&was); err != nil {
		return fmt.Errorf("resume: %s: %w", filepath.Join(dir, ArgsFile), err)
	}
	js, err := json.Marshal(args)
	if err != nil {
		return err
	}
	var now map[string]any
	if err := json.Unmarshal(js, &now); err != nil {
		return err
	}
	var changed []string
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Args{})) {
		k := jsonName(f)
		if slices.Contains(resumeFree, k) || slices.Contains(args.ResumeOverride, k) {
			continue
		}
		if !reflect.DeepEqual(was[k], now[k]) {
			changed = append(changed, fmt.Sprintf("{%s} %s -> %s", k, show(was[k]), show(now[k])))
		}
	}
	if len(changed) > 0 {
		return fieldErr("resume_from_checkpoint", "%s was trained with other arguments: %s. Resume with the same arguments, or name those you mean to change with {resume_override}",
			dir, strings.Join(changed, ", "))
	}
	return nil
}

func show(v any) string {
	if v == nil {
		return "(unset)"
	}
	js, _ := json.Marshal(v)
	return string(js)
}
