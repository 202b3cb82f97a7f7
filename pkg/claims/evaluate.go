package claims

import (
	"fmt"
	"math"

	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/lab"
)

// The configurations the tutorials train (notebooks 02 to 05): the AdaLink paper's design,
// LoRA on the query and value projections, prompt tuning with 8 tokens, full fine-tuning.
func adalinkAt(base, task string, rank int, placement lab.Placement, steps int) Config {
	return Config{Label: fmt.Sprintf("AdaLink r=%d %s", rank, placement), Base: base, Task: task, Method: "ADALINK",
		Rank: rank, Placement: string(placement), Steps: steps}
}

func loraQV(base, task string, steps int) Config {
	return Config{Label: "LoRA q,v r=8", Base: base, Task: task, Method: "LORA", Rank: 8, Placement: "block/*/attn/{q,v}", Steps: steps}
}

func promptP8(base, task string, steps int) Config {
	return Config{Label: "prompt p=8", Base: base, Task: task, Method: "PROMPT_TUNING", Rank: 8, Steps: steps}
}

func ftAll(base, task string, steps int) Config {
	return Config{Label: "FT all", Base: base, Task: task, Method: "FULL", Placement: "all", Steps: steps}
}

// The tutorials' budgets.
const (
	vlmSteps  = 200
	textSteps = 300
)

// Evaluate judges every claim on the runs.
func Evaluate(sums []lab.Summary) []Finding {
	return []Finding{ordering(sums), instruction(sums), ranks(sums), separate(sums), text(sums)}
}

var vqaTasks = []string{"fashion-footwear", "mnist-parity"}

// ordering is claim 1: FT ≳ LoRA ≳ AdaLink > prompt tuning on multimodal tasks.
func ordering(sums []lab.Summary) Finding {
	f := Finding{N: 1, Claim: "On multimodal tasks FT ≳ LoRA ≳ AdaLink > prompt tuning, with a small gap to FT.",
		How: "notebook 04, `vlm-instruct`, two held-out questions, 200 steps, 3 seeds: AdaLink must beat prompt tuning " +
			"beyond the noise, and neither ≳ may be reversed beyond it.",
		Header: []string{"task · configuration", "test accuracy"}}
	verdict, measured := Supported, true
	var notes []string
	for _, task := range vqaTasks {
		cs := []Config{ftAll(bases.VLMInstruct, task, vlmSteps), loraQV(bases.VLMInstruct, task, vlmSteps),
			adalinkAt(bases.VLMInstruct, task, 8, lab.OnBoth, vlmSteps), promptP8(bases.VLMInstruct, task, vlmSteps)}
		sts := make([]Stat, len(cs))
		for i, c := range cs {
			sts[i] = c.Of(sums)
			f.Rows = append(f.Rows, row(task+" · "+c.Label, sts[i]))
		}
		if !enough(sts...) {
			measured = false
			continue
		}
		ftLora, _, _ := Compare(sts[0], sts[1])
		loraAda, _, _ := Compare(sts[1], sts[2])
		adaPrompt, d, _ := Compare(sts[2], sts[3])
		gap := sts[0].Mean - sts[2].Mean
		switch {
		case adaPrompt < 0 || ftLora < 0 || loraAda < 0:
			verdict = NotSupported
			notes = append(notes, fmt.Sprintf("On %s the ordering is reversed beyond the noise (AdaLink − prompt %s, FT − AdaLink %s).",
				task, points(sts[2].Metric, d), points(sts[2].Metric, gap)))
		case adaPrompt == 0:
			if verdict == Supported {
				verdict = NotSettled
			}
			notes = append(notes, fmt.Sprintf("On %s AdaLink and prompt tuning are within the noise (%s).", task, points(sts[2].Metric, d)))
		default:
			notes = append(notes, fmt.Sprintf("On %s the ordering holds; FT − AdaLink is %s.", task, points(sts[2].Metric, gap)))
		}
	}
	return finish(f, verdict, measured, notes)
}

// instruction is claim 2: the gap to FT shrinks on an instruction-tuned base.
func instruction(sums []lab.Summary) Finding {
	f := Finding{N: 2, Claim: "On an instruction-tuned base the gap between AdaLink and FT shrinks.",
		How: "notebook 04: FT all − AdaLink r=8 on `vlm-raw` against `vlm-instruct`, two held-out questions, 3 seeds; " +
			"the gap must be smaller on `vlm-instruct` by more than twice the standard error of the difference.",
		Header: []string{"task · base · configuration", "test accuracy"}}
	verdict, measured := Supported, true
	var notes []string
	for _, task := range vqaTasks {
		var gaps [2]float64
		var ses [2]float64
		ok := true
		for i, base := range []string{bases.VLMRaw, bases.VLMInstruct} {
			ft, ada := ftAll(base, task, vlmSteps).Of(sums), adalinkAt(base, task, 8, lab.OnBoth, vlmSteps).Of(sums)
			f.Rows = append(f.Rows, row(task+" · "+base+" · FT all", ft), row(task+" · "+base+" · AdaLink r=8", ada))
			if !enough(ft, ada) {
				ok = false
				continue
			}
			gaps[i], ses[i] = ft.Mean-ada.Mean, math.Hypot(ft.se(), ada.se())
		}
		if !ok {
			measured = false
			continue
		}
		d, margin := gaps[0]-gaps[1], 2*math.Hypot(ses[0], ses[1])
		msg := fmt.Sprintf("On %s the gap is %s on vlm-raw and %s on vlm-instruct.", task,
			points("accuracy", gaps[0]), points("accuracy", gaps[1]))
		switch {
		case d > margin:
		case d < -margin:
			verdict = NotSupported
		default:
			if verdict == Supported {
				verdict = NotSettled
			}
		}
		notes = append(notes, msg)
	}
	return finish(f, verdict, measured, notes)
}

// ranks is claim 3: AdaLink is roughly flat across ranks.
func ranks(sums []lab.Summary) Finding {
	f := Finding{N: 3, Claim: "AdaLink's quality is roughly flat across ranks.",
		How: "notebook 02, `vlm-instruct`, mnist-parity, AdaLink on both modalities at ranks 1, 4, 16, 64, 3 seeds: " +
			"flat when the best and the worst rank differ by less than the noise or by under 2 points; not flat when " +
			"they differ beyond the noise by 5 points or more.",
		Header: []string{"configuration", "test accuracy"}}
	var sts []Stat
	for _, r := range []int{1, 4, 16, 64} {
		c := adalinkAt(bases.VLMInstruct, "mnist-parity", r, lab.OnBoth, vlmSteps)
		st := c.Of(sums)
		sts = append(sts, st)
		f.Rows = append(f.Rows, row(c.Label, st))
	}
	if !enough(sts...) {
		return finish(f, "", false, nil)
	}
	lo, hi := sts[0], sts[0]
	for _, s := range sts {
		if s.Mean < lo.Mean {
			lo = s
		}
		if s.Mean > hi.Mean {
			hi = s
		}
	}
	sign, d, _ := Compare(hi, lo)
	note := fmt.Sprintf("Best minus worst rank: %s.", points("accuracy", d))
	// Whether the smallest rank alone makes the difference: the paper's ranks start higher.
	lo2, hi2 := sts[1], sts[1]
	for _, s := range sts[1:] {
		if s.Mean < lo2.Mean {
			lo2 = s
		}
		if s.Mean > hi2.Mean {
			hi2 = s
		}
	}
	s2, d2, _ := Compare(hi2, lo2)
	within := "beyond the noise"
	if s2 == 0 {
		within = "within the noise"
	}
	note += fmt.Sprintf(" Without rank 1, ranks 4 to 64 differ by %s, %s.", points("accuracy", d2), within)
	switch {
	case sign == 0 || d < 0.02:
		return finish(f, Supported, true, []string{note})
	case d >= 0.05:
		return finish(f, NotSupported, true, []string{note})
	}
	return finish(f, NotSettled, true, []string{note})
}

// separate is claim 4: separate per-modality adapters beat one shared adapter.
func separate(sums []lab.Summary) Finding {
	f := Finding{N: 4, Claim: "Separate per-modality adapters help against one shared adapter.",
		How: "notebooks 02 (mnist-parity, ranks 1-64) and 03 (emoji-category, fashion-caption, rank 8), `vlm-instruct`, " +
			"3 seeds: AdaLink on both modalities with a pair of matrices each against one shared pair, at each rank and task.",
		Header: []string{"task · configuration", "test score"}}
	type pair struct {
		task string
		rank int
	}
	var pairs []pair
	for _, r := range []int{1, 4, 16, 64} {
		pairs = append(pairs, pair{"mnist-parity", r})
	}
	pairs = append(pairs, pair{"emoji-category", 8}, pair{"fashion-caption", 8})
	plus, minus, measured := 0, 0, 0
	for _, p := range pairs {
		both := adalinkAt(bases.VLMInstruct, p.task, p.rank, lab.OnBoth, vlmSteps).Of(sums)
		shared := adalinkAt(bases.VLMInstruct, p.task, p.rank, lab.OnShared, vlmSteps).Of(sums)
		f.Rows = append(f.Rows, row(fmt.Sprintf("%s · r=%d separate", p.task, p.rank), both),
			row(fmt.Sprintf("%s · r=%d shared", p.task, p.rank), shared))
		if !enough(both, shared) {
			continue
		}
		measured++
		switch s, _, _ := Compare(both, shared); s {
		case 1:
			plus++
		case -1:
			minus++
		}
	}
	if measured < len(pairs) {
		return finish(f, "", false, nil)
	}
	note := fmt.Sprintf("Separate beats shared beyond the noise in %d of %d comparisons, shared beats separate in %d.", plus, measured, minus)
	switch {
	case minus == 0 && 2*plus >= measured:
		return finish(f, Supported, true, []string{note})
	case plus == 0 && minus > 0:
		return finish(f, NotSupported, true, []string{note})
	}
	return finish(f, NotSettled, true, []string{note})
}

// text is claim 5: AdaLink holds up on text tasks where prompt tuning struggles.
func text(sums []lab.Summary) Finding {
	f := Finding{N: 5, Claim: "On text tasks AdaLink holds up where prompt tuning struggles.",
		How: "notebook 05, the text base, spam and fortune-topic, 300 steps, 3 seeds: AdaLink r=8 against prompt tuning " +
			"with 8 tokens (the paper's setting is multi-task GLUE on T5; ours is two single tasks on a small LM).",
		Header: []string{"task · configuration", "test accuracy"}}
	verdict, measured := Supported, true
	var notes []string
	for _, task := range []string{"spam", "fortune-topic"} {
		ada := adalinkAt(bases.Text, task, 8, lab.OnBoth, textSteps).Of(sums)
		pr := promptP8(bases.Text, task, textSteps).Of(sums)
		f.Rows = append(f.Rows, row(task+" · AdaLink r=8", ada), row(task+" · prompt p=8", pr))
		if !enough(ada, pr) {
			measured = false
			continue
		}
		s, d, _ := Compare(ada, pr)
		notes = append(notes, fmt.Sprintf("On %s AdaLink − prompt tuning is %s.", task, points("accuracy", d)))
		switch {
		case s < 0:
			verdict = NotSupported
		case s == 0 && verdict == Supported:
			verdict = NotSettled
		}
	}
	return finish(f, verdict, measured, notes)
}

// finish sets the verdict (NotMeasured when runs are missing) and the note.
func finish(f Finding, v Verdict, measured bool, notes []string) Finding {
	if !measured {
		f.Verdict = NotMeasured
		f.Note = fmt.Sprintf("Some of these configurations have fewer than %d seeds of full-mode runs yet: run `make results`.", MinSeeds)
		return f
	}
	f.Verdict, f.Note = v, joinNotes(notes)
	return f
}
