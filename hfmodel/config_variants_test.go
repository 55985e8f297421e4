package hfmodel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

// Config files of real Hub rerankers (their keys as the Hub serves them).
const (
	miniLMConfig = `{"_name_or_path":"nreimers/MiniLM-L6-H384-uncased","architectures":["BertForSequenceClassification"],
"attention_probs_dropout_prob":0.1,"gradient_checkpointing":false,"hidden_act":"gelu","hidden_dropout_prob":0.1,"hidden_size":384,
"id2label":{"0":"LABEL_0"},"initializer_range":0.02,"intermediate_size":1536,"label2id":{"LABEL_0":0},"layer_norm_eps":1e-12,
"max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,"num_hidden_layers":6,"pad_token_id":0,
"position_embedding_type":"absolute","sbert_ce_default_activation_function":"torch.nn.modules.linear.Identity",
"transformers_version":"4.6.1","type_vocab_size":2,"use_cache":true,"vocab_size":30522}`
	// TinyBERT's own keys (cell, emb_size, structure...), num_labels
	// without id2label, no pad_token_id nor position_embedding_type.
	tinyBERTConfig = `{"architectures":["BertForSequenceClassification"],"attention_probs_dropout_prob":0.1,"cell":{},"emb_size":312,
"hidden_act":"gelu","hidden_dropout_prob":0.1,"hidden_size":312,"initializer_range":0.02,"intermediate_size":1200,
"max_position_embeddings":512,"model_type":"bert","num_attention_heads":12,"num_hidden_layers":4,"num_labels":1,
"pre_trained":"","structure":[],"training":"","type_vocab_size":2,"vocab_size":30522}`
	m3Config = `{"_name_or_path":"BAAI/bge-m3","architectures":["XLMRobertaForSequenceClassification"],"attention_probs_dropout_prob":0.1,
"bos_token_id":0,"classifier_dropout":null,"eos_token_id":2,"hidden_act":"gelu","hidden_dropout_prob":0.1,"hidden_size":1024,
"id2label":{"0":"LABEL_0"},"initializer_range":0.02,"intermediate_size":4096,"label2id":{"LABEL_0":0},"layer_norm_eps":1e-05,
"max_position_embeddings":8194,"model_type":"xlm-roberta","num_attention_heads":16,"num_hidden_layers":24,"output_past":true,
"pad_token_id":1,"position_embedding_type":"absolute","torch_dtype":"float32","transformers_version":"4.38.1","type_vocab_size":1,
"use_cache":true,"vocab_size":250002}`
)

// TestConfigVariants reads the config.json of real rerankers and the
// variants of their keys transformers accepts: each gives the shape
// transformers builds, or an error naming the key (an activation or
// position scheme rerank does not implement).
func TestConfigVariants(t *testing.T) {
	edit := func(base, from, to string) string {
		require.Contains(t, base, from)
		return strings.Replace(base, from, to, 1)
	}
	for _, tc := range []struct {
		name string
		json string
		want func(t *testing.T, c *hfmodel.Config)
		err  string
	}{
		{"ms-marco-MiniLM-L-6-v2", miniLMConfig, func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, nn.Config{Arch: nn.BERT, VocabSize: 30522, Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536, MaxPositions: 512,
				TypeVocab: 2, LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1}, c.Config)
		}, ""},
		{"ms-marco-TinyBERT-L-4 (head dim 26)", tinyBERTConfig, func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, 26, c.HeadDim())
			assert.Equal(t, 1200, c.Intermediate)
			assert.Equal(t, 1, c.NumLabels, "num_labels without id2label")
			assert.Equal(t, 0, c.PadID, "BertConfig's default pad_token_id")
		}, ""},
		{"bge-reranker-v2-m3", m3Config, func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, nn.XLMRoberta, c.Arch)
			assert.Equal(t, 1, c.TypeVocab)
			assert.Equal(t, 1, c.PadID)
			assert.Equal(t, 8192, c.MaxSequence())
			assert.Equal(t, float32(1e-5), c.LayerNormEps)
			assert.Equal(t, c.HiddenDropout, c.ClassifierDropout, "classifier_dropout null: hidden_dropout_prob")
		}, ""},
		{"xlmr without pad_token_id", edit(m3Config, `"pad_token_id":1,`, ""), func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, 1, c.PadID, "XLMRobertaConfig's default")
		}, ""},
		{"no type_vocab_size", edit(miniLMConfig, `"type_vocab_size":2,`, ""), func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, 2, c.TypeVocab, "BertConfig's default")
		}, ""},
		{"no layer_norm_eps", edit(m3Config, `"layer_norm_eps":1e-05,`, ""), func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, float32(1e-12), c.LayerNormEps, "XLMRobertaConfig's default")
		}, ""},
		{"layer_norm_eps 1e-7", edit(miniLMConfig, `"layer_norm_eps":1e-12`, `"layer_norm_eps":1e-7`), func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, float32(1e-7), c.LayerNormEps)
		}, ""},
		{"two labels", edit(miniLMConfig, `"id2label":{"0":"LABEL_0"}`, `"id2label":{"0":"irrelevant","1":"relevant"}`), func(t *testing.T, c *hfmodel.Config) {
			assert.Equal(t, 2, c.NumLabels, "loads; input.NewEncoder refuses to score or train it")
		}, ""},
		{"RobertaForSequenceClassification", edit(edit(m3Config, "XLMRobertaForSequenceClassification", "RobertaForSequenceClassification"), `"xlm-roberta"`, `"roberta"`),
			func(t *testing.T, c *hfmodel.Config) { assert.Equal(t, nn.XLMRoberta, c.Arch) }, ""},
		{"gelu_new", edit(miniLMConfig, `"hidden_act":"gelu"`, `"hidden_act":"gelu_new"`), nil, `field "hidden_act": "gelu_new" is not supported`},
		{"gelu_pytorch_tanh", edit(m3Config, `"hidden_act":"gelu"`, `"hidden_act":"gelu_pytorch_tanh"`), nil, `field "hidden_act": "gelu_pytorch_tanh" is not supported`},
		{"relative positions", edit(miniLMConfig, `"position_embedding_type":"absolute"`, `"position_embedding_type":"relative_key"`), nil, `field "position_embedding_type": "relative_key" is not supported`},
		{"heads do not divide hidden", edit(miniLMConfig, `"num_attention_heads":12`, `"num_attention_heads":7`), nil, "hidden_size 384 is not a multiple of num_attention_heads 7"},
		{"zero layer_norm_eps", edit(miniLMConfig, `"layer_norm_eps":1e-12`, `"layer_norm_eps":0`), nil, "layer_norm_eps must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := hfmodel.ParseConfig("m/config.json", []byte(tc.json))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "m/config.json")
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			tc.want(t, c)
			// What rerank writes back keeps the keys it does not use.
			out, err := c.Marshal()
			require.NoError(t, err)
			back, err := hfmodel.ParseConfig("m/config.json", out)
			require.NoError(t, err)
			assert.Equal(t, c.Config, back.Config)
			for k := range c.Raw {
				if k != "num_labels" {
					assert.Contains(t, back.Raw, k)
				}
			}
		})
	}
}
