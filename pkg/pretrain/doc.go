// Package pretrain makes peftlab's base models: the fixed recipes of the shipped bases
// (package bases), the corpora they are pretrained on, and their held-out evaluation.
//
// Three bases share one 2,048-token WordPiece vocabulary (TrainTokenizer) learned on the text
// corpus plus every instruction, answer and caption of the tasks' training splits:
//
//   - text: a causal LM on the training texts of the imdb, spam and fortune-topic tasks
//     (their instructions removed) and the other fortune quotes, in 128-token windows;
//     validation and test texts, and training texts equal to one of them, are held out.
//   - vlm-raw: a vision-language model pretrained on captioning alone ("describe the image."
//     answered with the image's name) over MNIST, Fashion-MNIST and Noto emoji: the paper's
//     raw regime.
//   - vlm-instruct: the same architecture pretrained on a balanced mixture of instructed VQA
//     and captioning tasks, with HeldOutTasks kept out, so adaptation can be measured on
//     tasks the base has not seen: the instruction-tuned regime.
//
// Multimodal data comes from pkg/tasks (the tasks' own prompts, answers, splits and 32x32 RGB
// images); the text corpus from pkg/tasks' text tasks and pkg/dataset's fortunes. Run
// pretrains a recipe with pkg/trainer (every weight trains, AdamW, cosine schedule, fixed
// seed), writes the checkpoint with bases.Write, reloads it with verification and scores it on
// held-out data: perplexity on the text tasks' test texts, or generated answers on the image
// tasks' test splits (exact-match accuracy, CIDEr-D and BLEU-4). cmd/pretrain is the command
// line.
package pretrain
