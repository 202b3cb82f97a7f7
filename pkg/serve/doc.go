// Package serve runs one frozen base with many adapters and mixes tasks in the same batch,
// each example with its own adapter (or none): the serving side of AdaLink's promise that
// one base serves every task at almost no extra cost.
//
//	base, _ := bases.Load("text")
//	e, _ := serve.New(base, serve.Options{})
//	e.Load("spam", "adapters/spam")  // peft.SaveAdapter's directory; checked against the base
//	e.Load("topic", "adapters/topic")
//	res, _ := e.Generate([]serve.Item{
//		{Adapter: "spam", Tokens: e.Prompt("is this mail spam or ham? ...")},
//		{Adapter: "topic", Tokens: e.Prompt("what is the topic of this quote? ...")},
//		{Tokens: e.Prompt("once upon a time")}, // the base alone
//	})
//
// Engine is the mixed-batch inference (AdaLink, LoRA gathered per example, prompt tuning;
// full fine-tuning and merged LoRA as per-task models), Batcher the dynamic batching in
// front of it, ScanDir and ScanStore find adapters in directories and in the lab's run
// store, DecodePNG reads request images, SyntheticAdapter makes random adapters for tests and
// benchmarks, and Measure is the serving measurement of notebooks/06_serving.ipynb and
// `go run ./cmd/serve -measure`. The HTTP service is package service, the load generator
// package loadgen.
package serve
