// Package model is peftlab's base transformer: a small multimodal encoder
// and language model built so that every place an adapter can attach is a
// named site (package site).
//
// # What the model is
//
// Text tokens go through a token embedding; images are cut into P×P patches
// (ViT style) and projected to the model width by the Linear site
// embed/image/patch. Each modality then passes its Input site (input/image,
// input/text), where AdaLink and prompt tuning work on the raw embeddings;
// only after that are position and modality-type embeddings added, so
// inserted prompt tokens get positions like any token. The sequence
//
//	[image patches][text tokens]
//
// runs through pre-LN blocks (LayerNorm → attention → residual, LayerNorm →
// GELU MLP → residual) and a final LayerNorm. Attention is our own, scaled by
// 1/√d_head, with a prefix-LM mask: patches see all patches, text sees all
// patches and earlier text, and padding (token id 0) is seen by nobody.
//
// Heads: Classify mean-pools the real positions into head/cls; LMLogits
// gives next-token logits from head/lm; Generate decodes greedily.
// Text-only and image-only models and inputs work too.
//
// # Sites and weights
//
// Config.Layout lists the sites and every base weight without building a
// graph; the weights of Linear site "block/0/attn/q" are the variables
// "/block/0/attn/q/weights" [In, Out] and "/block/0/attn/q/biases" [Out].
//
//	input/text, input/image          Input sites (modality embeddings)
//	embed/image/patch                patch projection P·P·C → d
//	block/i/attn/{q,k,v,o}           attention projections d → d
//	block/i/mlp/up, block/i/mlp/down d → MLPDim → d
//	head/cls, head/lm                d → Classes, d → Vocab
//
// Other weights: /embed/text/embeddings [Vocab, d], /embed/pos/embeddings
// [Patches+MaxLen, d] (learned positions only), /embed/type/embeddings
// [2, d] (row 0 image, row 1 text), /block/i/ln1, /block/i/ln2 and
// /final_ln, each with "gain" and "offset" [d].
//
// # Using it
//
// The model functions take a site.Hook: nil is the base model, a
// *peft.Model adds adapters. They are ordinary GoMLX graph functions, so
// they run inside context.NewExec or a train.Trainer:
//
//	c := model.Config{Vocab: 100, Width: 64, Heads: 4, Blocks: 2, MLPDim: 128, MaxLen: 32}
//	exec, _ := context.NewExec(backend, ctx, func(ctx *context.Context, tokens *graph.Node) *graph.Node {
//		return model.LMLogits(ctx, c, nil, model.Inputs{Tokens: tokens})
//	})
//	logits, _ := exec.Exec1([][]int32{{5, 6, 7, 0}}) // [1, 4, 100]
//
// Init creates and initialises the base weights in a context without
// training; Save and Load write and read a base checkpoint (config.json and
// model.safetensors). TokenEmbed, PatchEmbed, Linear, LayerNorm, Attend, AttentionMask,
// Patchify and SinusoidalTable are the building blocks, exported for
// methods and tests that need the same computation.
//
// Graph functions panic on bad shapes with a sentence saying what was
// expected (GoMLX style); Generate, Init, Save, Load and Config.Validate
// return errors.
package model
