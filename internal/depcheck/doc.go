// Package depcheck holds the test that keeps rerank's library packages
// embeddable: a program that imports nn, crossencoder, lora, train and eval
// links no command-line framework, no plotting and no terminal library.
// Those belong to cmd/rerank and eval/report. It also checks that every
// library package has a runnable Example showing the embedding use.
package depcheck
